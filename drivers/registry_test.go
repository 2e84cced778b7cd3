package drivers

import (
	"slices"
	"testing"
)

func TestPriorDirs(t *testing.T) {
	// dockerd makes vfs/ as soon as it starts vfs: only vfs/dir is data.
	want := []string{"aufs", "btrfs", "devicemapper", "fuse-overlayfs", "overlay", "overlay2", "vfs/dir", "zfs"}
	if got := PriorDirs(); !slices.Equal(got, want) {
		t.Errorf("PriorDirs() = %q, want %q", got, want)
	}
}

func TestOwnsOption(t *testing.T) {
	for _, tt := range []struct {
		driver, key string
		want        bool
		owner       string
	}{
		{"overlay2", "overlay2.size", true, "overlay2"},
		{"overlay", "overlay2.size", false, "overlay2"},
		{"overlay2", "overlay2.", false, "overlay2"},
		{"devicemapper", "dm.basesize", true, "devicemapper"},
		{"vfs", "size", true, ""},
		{"overlay2", "size", false, ""},
		{"nosuch", "nosuch.x", false, ""},
	} {
		if got := OwnsOption(tt.driver, tt.key); got != tt.want {
			t.Errorf("OwnsOption(%q, %q) = %v", tt.driver, tt.key, got)
		}
		if got := OptionOwner(tt.key); got != tt.owner {
			t.Errorf("OptionOwner(%q) = %q, want %q", tt.key, got, tt.owner)
		}
	}
}

func TestForStorageDriver(t *testing.T) {
	for in, want := range map[string]string{"overlayfs": "overlay2", "native": "vfs", "devmapper": "devicemapper", "btrfs": "btrfs", "nosuch": "nosuch", "": ""} {
		if got := ForStorageDriver(in); got != want {
			t.Errorf("ForStorageDriver(%q) = %q, want %q", in, got, want)
		}
	}
}
