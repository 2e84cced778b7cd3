package ovl

import (
	"strings"
	"testing"
)

func TestProjectQuotaOn(t *testing.T) {
	for _, tc := range []struct {
		opts, want string
	}{
		{"rw,relatime,attr2,inode64,logbufs=8,logbsize=32k,prjquota", ""},
		{"rw,pquota", ""},
		{"rw,relatime,attr2,inode64,logbufs=8,logbsize=32k,noquota", "without project quotas"},
		{"rw,pqnoenforce", "without enforcing"},
		{"rw,usrquota", "without project quotas"},
	} {
		err := projectQuotaOn("/var/lib/docker", "/dev/sdb1", tc.opts)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.opts, err, tc.want)
		}
	}
}
