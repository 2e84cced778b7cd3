package refcount

import (
	"sync"
	"testing"
)

func TestCounterSerialisesOneLayer(t *testing.T) {
	var c Counter
	var mounts int
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := c.Lock("a")
			defer e.Unlock()
			if e.Count == 0 {
				mounts++ // guarded by the entry lock
				e.Path = "/mnt/a"
			}
			e.Count++
		}()
	}
	wg.Wait()
	if mounts != 1 {
		t.Fatalf("mounted %d times, want 1", mounts)
	}
	if got := c.Held(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("Held() = %v, want [a]", got)
	}
	e := c.Lock("a")
	if e.Count != 16 || e.Path != "/mnt/a" {
		t.Fatalf("entry = %d %q, want 16 /mnt/a", e.Count, e.Path)
	}
	e.Count = 0
	e.Unlock()
	if got := c.Held(); len(got) != 0 {
		t.Fatalf("Held() after release = %v, want none", got)
	}
	if len(c.m) != 0 {
		t.Fatalf("released entry kept: %v", c.m)
	}
}
