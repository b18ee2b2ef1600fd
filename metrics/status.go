package metrics

import (
	"sync"
	"time"

	"github.com/raftlite/raftlite/store"
)

// statusCache takes one store.Status per scrape: the metrics read it many times, and it stats files.
type statusCache struct {
	st   *store.Store
	mu   sync.Mutex
	at   time.Time
	last store.Status
}

func newStatusCache(st *store.Store) *statusCache { return &statusCache{st: st} }

func (c *statusCache) get() store.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > 100*time.Millisecond {
		c.last, c.at = c.st.Status(), time.Now()
	}
	return c.last
}
