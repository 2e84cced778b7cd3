package archive

import "testing"

// WithoutOpenat2 makes path resolution take the fallback of kernels older
// than 5.6 for the rest of the test.
func WithoutOpenat2(t testing.TB) {
	old := noOpenat2.Load()
	noOpenat2.Store(true)
	t.Cleanup(func() { noOpenat2.Store(old) })
}
