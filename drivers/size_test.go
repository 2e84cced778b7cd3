package drivers

import "testing"

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "10G", want: 10 << 30},
		{in: "10GB", want: 10 << 30},
		{in: "512MiB", want: 512 << 20},
		{in: "1024k", want: 1 << 20},
		{in: "2048", want: 2048},
		{in: "1.5g", want: 3 << 29},
		{in: "", bad: true},
		{in: "ten", bad: true},
		{in: "-1G", bad: true},
	} {
		got, err := ParseSize(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("ParseSize(%q) = %d, %v; want %d (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}
