package version

import "testing"

func TestParseKernel(t *testing.T) {
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
		{release: "6.1.0-28-amd64", want: "6.1.0"},
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
			k, err := ParseKernel(tt.release)
			if err != nil {
				t.Fatalf("ParseKernel(%q): %v", tt.release, err)
			}
			if got := k.String(); got != tt.want {
				t.Errorf("version = %s, want %s", got, tt.want)
			}
			if k.RC != tt.rc || k.RHEL != tt.rhel || k.RHELBuild != tt.build || k.WSL != tt.wsl {
				t.Errorf("got rc=%d rhel=%q build=%d wsl=%d, want rc=%d rhel=%q build=%d wsl=%d",
					k.RC, k.RHEL, k.RHELBuild, k.WSL, tt.rc, tt.rhel, tt.build, tt.wsl)
			}
		})
	}
}

func TestParseKernelErrors(t *testing.T) {
	tests := []struct {
		name, release, err string
	}{
		{"empty", "", "parse kernel release: empty string"},
		{"blank", " \n", "parse kernel release: empty string"},
		{"words", "linux", `parse kernel release "linux": no leading version number`},
		{"major only", "5-generic", `parse kernel release "5-generic": want at least major.minor`},
		{"huge", "99999999.1", `parse kernel release "99999999.1": version number too long`},
		{"binary", "\x00\x01\x02", "parse kernel release \"\\x00\\x01\\x02\": no leading version number"},
		{"long", "x" + string(make([]byte, 70)), `parse kernel release "x` + `\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00...": no leading version number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKernel(tt.release)
			if err == nil || err.Error() != tt.err {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
}

func TestKernelAtLeast(t *testing.T) {
	tests := []struct {
		release string
		min     Kernel
		want    bool
	}{
		{"5.15.0-91-generic", K(5, 15), true},
		// A distribution's build number is not a semver pre-release.
		{"6.1.0-28-amd64", K(6, 1), true},
		{"4.0.0-rc1", K(4, 0), true},
		{"3.19.8", K(4, 0), false},
		{"3.18.0-031800-generic", K(3, 18), true},
		{"3.17.9", K(3, 18), false},
		{"3.10.0-1160.el7.x86_64", K(4, 0), false},
		{"4.4.0-19041-Microsoft", K(3, 18), true},
		{"10.0.0", K(4, 18), true},
		{"4.18", K(4, 18), true},
		{"4.9.337", K(4, 10), false},
		{"4.10.0", Kernel{Major: 4, Minor: 10, Patch: 1}, false},
		{"4.10.2", Kernel{Major: 4, Minor: 10, Patch: 1}, true},
		{"0.0.1", Kernel{}, true},
	}
	for _, tt := range tests {
		k, err := ParseKernel(tt.release)
		if err != nil {
			t.Fatal(err)
		}
		if got := k.AtLeast(tt.min); got != tt.want {
			t.Errorf("%s AtLeast(%s) = %v, want %v", tt.release, tt.min, got, tt.want)
		}
	}
}

func TestKernelCompare(t *testing.T) {
	tests := []struct {
		a, b Kernel
		want int
	}{
		{K(4, 0), K(4, 0), 0},
		{K(4, 0), K(4, 10), -1},
		{K(4, 10), K(4, 9), 1},
		{K(5, 0), K(4, 19), 1},
		{Kernel{Major: 4, Minor: 4, Patch: 1}, K(4, 4), 1},
		{Kernel{Major: 4, Minor: 4, RC: 3, Suffix: "rc3"}, K(4, 4), 0},
	}
	for _, tt := range tests {
		if got := tt.a.Compare(tt.b); got != tt.want {
			t.Errorf("%s.Compare(%s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := tt.b.Compare(tt.a); got != -tt.want {
			t.Errorf("%s.Compare(%s) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestKernelThreshold(t *testing.T) {
	tests := []struct {
		k    Kernel
		want string
	}{
		{K(4, 0), "4.0"},
		{K(4, 10), "4.10"},
		{K(3, 18), "3.18"},
		{Kernel{Major: 5, Minor: 15, Patch: 3}, "5.15.3"},
		{Kernel{}, ""},
	}
	for _, tt := range tests {
		if got := tt.k.Threshold(); got != tt.want {
			t.Errorf("%#v.Threshold() = %q, want %q", tt.k, got, tt.want)
		}
	}
}

// FuzzParseKernel checks that no input crashes the parser and that the
// numeric core it reports parses back to itself.
func FuzzParseKernel(f *testing.F) {
	for _, s := range []string{"3.10.0-1160.el7.x86_64", "4.4.0-19041-Microsoft", "5.15.153.1-microsoft-standard-WSL2", "4.0.0-rc1", "3.12-1-amd64", "", "x", "1.2.3.4.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKernel(s)
		if err != nil {
			return
		}
		again, err := ParseKernel(k.String())
		if err != nil || again.Compare(k) != 0 || again.String() != k.String() {
			t.Fatalf("%q -> %s -> %v, %v", s, k, again, err)
		}
	})
}
