package db

import (
	"context"
	"fmt"
	"math"
	"sync"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// pool hands out read-only connections, opening them on demand up to a limit.
type pool struct {
	path string
	fk   bool
	sem  chan struct{} // one token per connection in use

	maxValue int64
	exts     []string // SQLite extensions every connection loads

	mu   sync.Mutex
	idle []*reader
}

type reader struct {
	conn  *sqlite3.SQLiteConn
	stmts *stmtCache
}

// newPool makes a pool of at most max readers. maxValue, if positive, bounds the size of any string or
// blob a read may make (SQLITE_LIMIT_LENGTH), so that SELECT randomblob(999999999) fails in SQLite before
// it costs the node a gigabyte several times over.
func newPool(path string, fk bool, max int, maxValue int64, exts []string) *pool {
	return &pool{path: path, fk: fk, sem: make(chan struct{}, max), maxValue: maxValue, exts: exts}
}

// inUse is the number of connections serving a read now.
func (p *pool) inUse() int { return len(p.sem) }

func (p *pool) get(ctx context.Context) (*reader, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		r := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return r, nil
	}
	p.mu.Unlock()
	conn, err := openConnWith(readerDSN(p.path, p.fk), p.exts)
	if err != nil {
		<-p.sem
		return nil, fmt.Errorf("open %s for reading: %w", p.path, err)
	}
	if p.maxValue > 0 && p.maxValue < math.MaxInt32 {
		conn.SetLimit(sqlite3.SQLITE_LIMIT_LENGTH, int(p.maxValue))
	}
	// A pooled connection serves other clients next: nothing one client does may stay on it.
	refused := &refusal{}
	conn.RegisterAuthorizer(func(op int, arg1, arg2, _ string) int { return refused.verdict(sharedRefusal(op, arg1, arg2)) })
	trackRefusals(conn, refused)
	return &reader{conn: conn, stmts: newStmtCache(conn, 64)}, nil
}

// put returns a connection; a broken one (still inside a transaction it cannot end) is closed instead.
func (p *pool) put(r *reader) {
	if !r.conn.AutoCommit() {
		if _, err := r.conn.Exec("ROLLBACK", nil); err != nil || !r.conn.AutoCommit() {
			r.close()
			<-p.sem
			return
		}
	}
	p.mu.Lock()
	p.idle = append(p.idle, r)
	p.mu.Unlock()
	<-p.sem
}

// closeAll closes idle connections. The caller must make sure none is in use (DB.swap held exclusively).
func (p *pool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.idle {
		r.close()
	}
	p.idle = nil
}

func (r *reader) close() {
	r.stmts.close()
	forgetRefusals(r.conn)
	r.conn.Close()
}
