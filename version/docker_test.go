package version

import (
	"testing"
)

func TestParseDocker(t *testing.T) {
	for in, want := range map[string]Docker{
		"20.10.24": {20, 10, 24}, "17.03": {17, 3, 0}, "17.03.2-ce": {17, 3, 2}, "25.0.3": {25, 0, 3},
		"v24.0.7": {24, 0, 7}, "29": {29, 0, 0}, " v19.03.7+dfsg1 ": {19, 3, 7}, "24.0.0~rc1": {24, 0, 0},
		"1.13.1": {1, 13, 1},
	} {
		if got, err := ParseDocker(in); err != nil || got != want {
			t.Errorf("ParseDocker(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "v", "1.2.3.4", "twenty", "20.x", "20.-1", "12345.1", "20..1"} {
		want := `parse docker version "` + in + `": want MAJOR[.MINOR[.PATCH]], such as 20.10.24`
		if _, err := ParseDocker(in); err == nil || err.Error() != want {
			t.Errorf("ParseDocker(%q) err = %v, want %q", in, err, want)
		}
	}
}

func TestParseDockerd(t *testing.T) {
	for _, tt := range []struct {
		out, want, err string
	}{
		{out: "Docker version 20.10.24+dfsg1, build 5d6db84", want: "20.10.24"},
		{out: "Docker version 17.03.2-ce, build f5ec1e2\n", want: "17.03.2"},
		{out: "docker version 25.0", want: "25.0.0"},
		{out: "Docker version 29.1.3, build f52814d\nsecond line", want: "29.1.3"},
		{out: "Docker version 007.3.0", want: "7.03.0"},
		{out: "Docker version 99999999999999999999.1.1", err: `parse docker version: unexpected output "Docker version 99999999999999999999.1.1"`},
		{out: "Segmentation fault", err: `parse docker version: unexpected output "Segmentation fault"`},
		{out: "", err: `parse docker version: unexpected output ""`},
	} {
		v, err := ParseDockerd(tt.out)
		switch {
		case tt.err != "" && (err == nil || err.Error() != tt.err):
			t.Errorf("ParseDockerd(%q) err = %v, want %q", tt.out, err, tt.err)
		case tt.err == "" && (err != nil || v.String() != tt.want):
			t.Errorf("ParseDockerd(%q) = %v, %v; want %s", tt.out, v, err, tt.want)
		}
	}
}

func TestDockerOrder(t *testing.T) {
	vs := []string{"17.03.0", "17.03.2", "17.12", "19.03.6", "19.03.7", "20.10.24", "23.0", "24.0.9", "29.0.0"}
	for i, a := range vs {
		for j, b := range vs {
			va, vb := MustDocker(a), MustDocker(b)
			if va.Less(vb) != (i < j) || va.AtLeast(vb) != (i >= j) || (va.Compare(vb) == 0) != (i == j) {
				t.Errorf("%s vs %s: Less %v AtLeast %v Compare %d", a, b, va.Less(vb), va.AtLeast(vb), va.Compare(vb))
			}
		}
	}
	if s := MustDocker("23.0.6").String(); s != "23.0.6" {
		t.Errorf("23.0.6 prints as %q", s)
	}
	if l := MustDocker("17.3.2").Line(); l != "17.03" {
		t.Errorf("17.3.2 line = %q", l)
	}
}

// FuzzParseDocker: a release from a flag, dockerd or a file goes through
// ParseDocker; what it accepts prints and parses back to itself, and the
// order agrees with the printed numbers.
func FuzzParseDocker(f *testing.F) {
	for _, s := range []string{"20.10.24", "17.03", "17.03.2-ce", "25.0.3", "v24.0.7", "29", " v19.03.7+dfsg1 ", "17.100", "0017.3.0", "1.2.3.4", "", "v", "24.0.0~rc1"} {
		f.Add(s)
	}
	thresholds := []Docker{{19, 3, 7}, {23, 0, 0}, {24, 0, 0}, {29, 0, 0}}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseDocker(s)
		if err != nil {
			return
		}
		again, err := ParseDocker(v.String())
		if err != nil || again != v {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, v, v.String(), again, err)
		}
		for _, th := range thresholds {
			num := [3]int{v.Major, v.Minor, v.Patch}
			want := num[0] > th.Major || num[0] == th.Major && (num[1] > th.Minor || num[1] == th.Minor && num[2] >= th.Patch)
			if v.AtLeast(th) != want || v.Less(th) == want {
				t.Fatalf("%v at least %v: %v, want %v", v, th, v.AtLeast(th), want)
			}
		}
	})
}

// FuzzParseDockerd: whatever `dockerd --version` printed, an accepted
// release is one ParseDocker reads back the same.
func FuzzParseDockerd(f *testing.F) {
	for _, s := range []string{"Docker version 20.10.24+dfsg1, build 5d6db84", "Docker version 17.03.2-ce, build f5ec1e2\n", "docker version 25.0", "Docker version 007.3.0", "Docker version 99999999999999999999.1.1", "dockerd: command not found", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, out string) {
		v, err := ParseDockerd(out)
		if err != nil {
			return
		}
		if again, err := ParseDocker(v.String()); err != nil || again != v {
			t.Fatalf("%q -> %v -> %v, %v", out, v, again, err)
		}
	})
}
