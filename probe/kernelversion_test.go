package probe

import "testing"

func TestParseKernelRelease(t *testing.T) {
	tests := []struct {
		release string
		want    string
		rc      int
		rhel    string
		build   int
		wsl     int
	}{
		{release: "3.10.0-1160.el7.x86_64", want: "3.10.0", rhel: "el7", build: 1160},
		{release: "3.10.0-514.26.2.el7.x86_64", want: "3.10.0", rhel: "el7", build: 514},
		{release: "3.10.0-327.el7.x86_64", want: "3.10.0", rhel: "el7", build: 327},
		{release: "4.4.0-210-generic", want: "4.4.0"},
		{release: "5.15.0-91-generic", want: "5.15.0"},
		{release: "4.14.355-275.570.amzn2.x86_64", want: "4.14.355"},
		{release: "5.15.153.1-microsoft-standard-WSL2", want: "5.15.153", wsl: 2},
		{release: "4.4.0-19041-Microsoft", want: "4.4.0", wsl: 1},
		{release: "6.1.0-rpi7-rpi-v8", want: "6.1.0"},
		{release: "4.19.0-0.bpo.6-amd64", want: "4.19.0"},
		{release: "6.6.32-0-lts", want: "6.6.32"},
		{release: "2.6.32-754.35.1.el6.x86_64", want: "2.6.32", rhel: "el6", build: 754},
		{release: "4.0.0-rc1", want: "4.0.0", rc: 1},
		{release: "6.9-rc3", want: "6.9.0", rc: 3},
		{release: "3.18.0-031800-generic", want: "3.18.0"},
		{release: "6.8.0-45-generic", want: "6.8.0"},
		{release: "3.12-1-amd64", want: "3.12.0"},
		{release: "3.13.0-170-generic\n", want: "3.13.0"},
		{release: "5.10.0-28-cloud-amd64", want: "5.10.0"},
		{release: "6.12.9-arch1-1", want: "6.12.9"},
		{release: "4.18.0-553.el8_10.x86_64", want: "4.18.0", rhel: "el8", build: 553},
	}
	for _, tt := range tests {
		t.Run(tt.release, func(t *testing.T) {
			kv, err := ParseKernelRelease(tt.release)
			if err != nil {
				t.Fatalf("ParseKernelRelease(%q): %v", tt.release, err)
			}
			if got := kv.String(); got != tt.want {
				t.Errorf("version = %s, want %s", got, tt.want)
			}
			if kv.RC != tt.rc || kv.RHEL != tt.rhel || kv.RHELBuild != tt.build || kv.WSL != tt.wsl {
				t.Errorf("got rc=%d rhel=%q build=%d wsl=%d, want rc=%d rhel=%q build=%d wsl=%d",
					kv.RC, kv.RHEL, kv.RHELBuild, kv.WSL, tt.rc, tt.rhel, tt.build, tt.wsl)
			}
		})
	}
}

func TestParseKernelReleaseErrors(t *testing.T) {
	tests := []struct {
		name, release, err string
	}{
		{"empty", "", "parse kernel release: empty string"},
		{"blank", " \n", "parse kernel release: empty string"},
		{"words", "linux", `parse kernel release "linux": no leading version number`},
		{"major only", "5-generic", `parse kernel release "5-generic": want at least major.minor`},
		{"huge", "99999999.1", `parse kernel release "99999999.1": version number too long`},
		{"binary", "\x00\x01\x02", "parse kernel release \"\\x00\\x01\\x02\": no leading version number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKernelRelease(tt.release)
			if err == nil || err.Error() != tt.err {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
}

func TestKernelAtLeast(t *testing.T) {
	tests := []struct {
		release, min string
		want         bool
	}{
		{"5.15.0-91-generic", "5.15", true},
		{"4.0.0-rc1", "4.0", true},
		{"3.19.8", "4.0", false},
		{"3.18.0-031800-generic", "3.18", true},
		{"3.17.9", "3.18", false},
		{"3.10.0-1160.el7.x86_64", "4.0", false},
		{"4.4.0-19041-Microsoft", "3.18", true},
		{"10.0.0", "4.18", true},
		{"4.18", "4.18", true},
		{"4.9.337", "4.10", false},
	}
	for _, tt := range tests {
		kv, err := ParseKernelRelease(tt.release)
		if err != nil {
			t.Fatal(err)
		}
		if got := kv.AtLeast(tt.min); got != tt.want {
			t.Errorf("%s AtLeast(%s) = %v, want %v", tt.release, tt.min, got, tt.want)
		}
	}
}

func TestBackportsMultiLowerdir(t *testing.T) {
	for release, want := range map[string]bool{
		"3.10.0-1160.el7.x86_64":     true,
		"3.10.0-514.el7.x86_64":      true,
		"3.10.0-327.36.3.el7.x86_64": false,
		"3.10.0-229.el7.x86_64":      false,
		"4.4.0-210-generic":          false,
		"3.10.105":                   false,
	} {
		kv, err := ParseKernelRelease(release)
		if err != nil {
			t.Fatal(err)
		}
		if got := kv.BackportsMultiLowerdir(); got != want {
			t.Errorf("%s: BackportsMultiLowerdir = %v, want %v", release, got, want)
		}
	}
}
