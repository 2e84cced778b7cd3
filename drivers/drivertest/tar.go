package drivertest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"testing"
	"time"
)

// Entry is one entry of a layer stream, for building streams and for
// comparing what comes back.
type Entry struct {
	// Name is the path in the stream; a directory's ends in "/".
	Name string
	Type byte
	// Mode holds the permission bits with setuid, setgid and sticky.
	Mode     int64
	UID, GID int
	ModTime  time.Time
	Body     string
	// Link is a symlink's target or a hard link's first name.
	Link         string
	Major, Minor int64
	Xattrs       map[string]string
}

// Epoch is the modification time of entries built here: whole seconds, as
// image layers carry them.
var Epoch = time.Date(2021, 6, 1, 12, 0, 0, 0, time.UTC)

// Dir is a directory entry.
func Dir(name string, mode int64) Entry {
	return Entry{Name: strings.TrimSuffix(name, "/") + "/", Type: tar.TypeDir, Mode: mode, ModTime: Epoch}
}

// File is a regular file entry.
func File(name, body string, mode int64) Entry {
	return Entry{Name: name, Type: tar.TypeReg, Mode: mode, Body: body, ModTime: Epoch}
}

// Symlink is a symlink entry.
func Symlink(name, target string) Entry {
	return Entry{Name: name, Type: tar.TypeSymlink, Mode: 0o777, Link: target, ModTime: Epoch}
}

// Hardlink is a hard link entry to an earlier entry of the same stream.
func Hardlink(name, target string) Entry {
	return Entry{Name: name, Type: tar.TypeLink, Mode: 0o644, Link: target, ModTime: Epoch}
}

// Whiteout deletes name of the layers below (aufs form).
func Whiteout(name string) Entry {
	return Entry{Name: path.Join(path.Dir(name), ".wh."+path.Base(name)), Type: tar.TypeReg, ModTime: Epoch}
}

// Opaque hides everything the layers below have in dir (aufs form).
func Opaque(dir string) Entry {
	return Entry{Name: path.Join(dir, ".wh..wh..opq"), Type: tar.TypeReg, ModTime: Epoch}
}

// Owned returns e owned by uid:gid.
func (e Entry) Owned(uid, gid int) Entry { e.UID, e.GID = uid, gid; return e }

// WithXattr returns e with one more extended attribute.
func (e Entry) WithXattr(name, value string) Entry {
	x := map[string]string{name: value}
	for k, v := range e.Xattrs {
		x[k] = v
	}
	e.Xattrs = x
	return e
}

// IsWhiteout reports whether e is an aufs-form whiteout or opaque marker.
func (e Entry) IsWhiteout() bool { return strings.HasPrefix(path.Base(e.Name), ".wh.") }

// TarBytes builds a layer stream from entries, in order.
func TarBytes(entries ...Entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Typeflag: e.Type, Name: e.Name, Mode: e.Mode, Uid: e.UID, Gid: e.GID,
			ModTime: e.ModTime, Linkname: e.Link, Devmajor: e.Major, Devminor: e.Minor,
			Format: tar.FormatPAX,
		}
		if e.Type == tar.TypeReg {
			hdr.Size = int64(len(e.Body))
		}
		for k, v := range e.Xattrs {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("tar entry %q: %w", e.Name, err)
		}
		if hdr.Size > 0 {
			if _, err := io.WriteString(tw, e.Body); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Tar is TarBytes for tests: a reader over the stream.
func Tar(t testing.TB, entries ...Entry) io.Reader {
	t.Helper()
	b, err := TarBytes(entries...)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

// ReadTar reads a whole layer stream into entries.
func ReadTar(r io.Reader) ([]Entry, error) {
	var out []Entry
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		e := Entry{
			Name: hdr.Name, Type: hdr.Typeflag, Mode: hdr.Mode, UID: hdr.Uid, GID: hdr.Gid,
			ModTime: hdr.ModTime, Link: hdr.Linkname, Major: hdr.Devmajor, Minor: hdr.Devminor,
		}
		if e.Type == tar.TypeRegA {
			e.Type = tar.TypeReg
		}
		for k, v := range hdr.PAXRecords {
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if e.Xattrs == nil {
					e.Xattrs = map[string]string{}
				}
				e.Xattrs[name] = v
			}
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			b, err := io.ReadAll(tr)
			if err != nil {
				return out, err
			}
			e.Body = string(b)
		}
		out = append(out, e)
	}
}

// CompareEntries lists the differences between two streams' entries,
// matched by name, in the fields a layer must keep: type, mode, owner,
// modification time (to the second), content, link target, device numbers
// and xattrs. A whiteout is compared by its name alone, a hard link by its
// target, and a symlink's mode is not compared (Linux has none). Order does not matter, and
// neither do differences in the form of a name ("./a" and "a").
func CompareEntries(want, got []Entry) []string {
	index := func(es []Entry) map[string]Entry {
		m := map[string]Entry{}
		for _, e := range es {
			m[normName(e.Name)] = e
		}
		return m
	}
	w, g := index(want), index(got)
	var diffs []string
	for _, name := range sortedNames(w) {
		we := w[name]
		ge, ok := g[name]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("missing %s", describe(we)))
			continue
		}
		if we.IsWhiteout() {
			continue
		}
		if we.Type == tar.TypeLink && ge.Type == tar.TypeLink {
			// A hard link shares its target's inode, whose metadata is
			// compared on the target.
			if normName(we.Link) != normName(ge.Link) {
				diffs = append(diffs, fmt.Sprintf("%s: link %q, want %q", name, ge.Link, we.Link))
			}
			continue
		}
		var d []string
		if we.Type != ge.Type {
			d = append(d, fmt.Sprintf("type %q, want %q", ge.Type, we.Type))
		}
		if we.Type != tar.TypeSymlink && we.Mode != ge.Mode {
			d = append(d, fmt.Sprintf("mode %o, want %o", ge.Mode, we.Mode))
		}
		if we.UID != ge.UID || we.GID != ge.GID {
			d = append(d, fmt.Sprintf("owner %d:%d, want %d:%d", ge.UID, ge.GID, we.UID, we.GID))
		}
		if we.ModTime.Unix() != ge.ModTime.Unix() {
			d = append(d, fmt.Sprintf("mtime %s, want %s", ge.ModTime.UTC().Format(time.RFC3339), we.ModTime.UTC().Format(time.RFC3339)))
		}
		if we.Body != ge.Body {
			d = append(d, fmt.Sprintf("content %q, want %q", ge.Body, we.Body))
		}
		if normName(we.Link) != normName(ge.Link) {
			d = append(d, fmt.Sprintf("link %q, want %q", ge.Link, we.Link))
		}
		if we.Major != ge.Major || we.Minor != ge.Minor {
			d = append(d, fmt.Sprintf("device %d:%d, want %d:%d", ge.Major, ge.Minor, we.Major, we.Minor))
		}
		if !sameMap(we.Xattrs, ge.Xattrs) {
			d = append(d, fmt.Sprintf("xattrs %v, want %v", ge.Xattrs, we.Xattrs))
		}
		if len(d) > 0 {
			diffs = append(diffs, name+": "+strings.Join(d, "; "))
		}
	}
	for _, name := range sortedNames(g) {
		if _, ok := w[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected %s", describe(g[name])))
		}
	}
	return diffs
}

func normName(n string) string {
	if n == "" {
		return ""
	}
	return strings.TrimPrefix(path.Clean("/"+n), "/")
}

func sortedNames(m map[string]Entry) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func describe(e Entry) string {
	kind := map[byte]string{
		tar.TypeReg: "file", tar.TypeDir: "dir", tar.TypeSymlink: "symlink", tar.TypeLink: "hard link",
		tar.TypeChar: "char device", tar.TypeBlock: "block device", tar.TypeFifo: "fifo",
	}[e.Type]
	if e.IsWhiteout() {
		kind = "whiteout"
	}
	return fmt.Sprintf("%s %s", kind, e.Name)
}

func readerOf(b []byte) io.Reader { return bytes.NewReader(b) }
