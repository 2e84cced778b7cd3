package ovl

import (
	"strings"
	"testing"
)

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := NewID()
		if len(id) != IDLength || strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" {
			t.Fatalf("NewID() = %q, want %d chars of base32", id, IDLength)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestValidID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"3f4e9a", true},
		{"layer-1.2_x", true},
		{"", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"/abs", false},
		{"nul\x00", false},
		{"l", false},
	} {
		if err := ValidID(tc.id, LinkDir); (err == nil) != tc.ok {
			t.Errorf("ValidID(%q) = %v, want ok %v", tc.id, err, tc.ok)
		}
	}
}

func TestSpecData(t *testing.T) {
	for _, tc := range []struct {
		name     string
		spec     Spec
		absolute bool
		want     string
	}{
		{"writable, absolute", Spec{Home: "/h", Lowers: []string{"l/A", "l/B"}, Upper: "x/diff", Work: "x/work", Options: []string{"index=off"}}, true,
			"index=off,lowerdir=/h/l/A:/h/l/B,upperdir=/h/x/diff,workdir=/h/x/work"},
		{"writable, relative", Spec{Home: "/h", Lowers: []string{"l/A", "l/B"}, Upper: "x/diff", Work: "x/work"}, false,
			"lowerdir=l/A:l/B,upperdir=x/diff,workdir=x/work"},
		{"read-only", Spec{Home: "/h", Lowers: []string{"x/diff", "l/A"}}, true, "lowerdir=/h/x/diff:/h/l/A"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.spec.Data(tc.absolute); got != tc.want {
				t.Errorf("Data(%v) = %q, want %q", tc.absolute, got, tc.want)
			}
		})
	}
}

// TestDeepestStackFitsRelative is the arithmetic behind MaxDepth: the
// relative data of the deepest writable stack fits in a 4 KiB page.
func TestDeepestStackFitsRelative(t *testing.T) {
	s := Spec{Home: "/var/lib/docker/overlay2", Options: []string{"index=off"},
		Upper: strings.Repeat("f", 64) + "/diff", Work: strings.Repeat("f", 64) + "/work"}
	for range MaxDepth {
		s.Lowers = append(s.Lowers, LinkDir+"/"+NewID())
	}
	if n := len(s.Data(false)); n > 4095 {
		t.Errorf("relative data of a %d-deep stack is %d bytes, more than a page", MaxDepth, n)
	}
	if n := len(s.Data(true)); n <= 4095 {
		t.Errorf("absolute data of a %d-deep stack is %d bytes: it would not need the other methods", MaxDepth, n)
	}
}
