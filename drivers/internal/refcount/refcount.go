package refcount

import "sync"

// Counter holds a count per layer id. The zero value is ready to use.
type Counter struct {
	mu sync.Mutex
	m  map[string]*Entry
}

// Entry is one layer's state, valid while its lock is held.
type Entry struct {
	mu    sync.Mutex
	c     *Counter
	id    string
	users int // holders and waiters of mu, guarded by c.mu
	held  int // Count as of the last Unlock, guarded by c.mu
	Count int
	Path  string
	// Value is driver-specific state of a mount (a process, a flag),
	// kept with the count.
	Value any
}

// Lock takes id's lock and returns its entry. The caller reads and changes
// Count and Path, then calls Unlock.
func (c *Counter) Lock(id string) *Entry {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*Entry{}
	}
	e := c.m[id]
	if e == nil {
		e = &Entry{c: c, id: id}
		c.m[id] = e
	}
	e.users++
	c.mu.Unlock()
	e.mu.Lock()
	return e
}

// Unlock releases the entry; an entry with no references and no waiters
// is forgotten.
func (e *Entry) Unlock() {
	c := e.c
	c.mu.Lock()
	e.users--
	e.held = e.Count
	if e.users == 0 && e.Count == 0 {
		delete(c.m, e.id)
	}
	c.mu.Unlock()
	e.mu.Unlock()
}

// Held returns the ids with at least one reference, for Cleanup.
func (c *Counter) Held() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for id, e := range c.m {
		if e.held > 0 {
			ids = append(ids, id)
		}
	}
	return ids
}
