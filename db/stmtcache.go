package db

import (
	"container/list"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// stmtCache keeps prepared statements of one connection, least recently used first out. The driver's own
// cache is only reachable through Exec and Query, which hide what we need: whether a statement is read-only
// and how many parameters it takes.
type stmtCache struct {
	conn  *sqlite3.SQLiteConn
	max   int
	order *list.List // of *cachedStmt, most recently used at the front
	byKey map[string]*list.Element
}

type cachedStmt struct {
	sql  string
	stmt *sqlite3.SQLiteStmt
}

func newStmtCache(conn *sqlite3.SQLiteConn, max int) *stmtCache {
	return &stmtCache{conn: conn, max: max, order: list.New(), byKey: make(map[string]*list.Element)}
}

// prepare returns a prepared statement for sql, which must hold exactly one statement.
func (c *stmtCache) prepare(sql string) (*sqlite3.SQLiteStmt, error) {
	if e, ok := c.byKey[sql]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*cachedStmt).stmt, nil
	}
	s, err := c.conn.Prepare(sql)
	if err != nil {
		return nil, explainRefusal(c.conn, err)
	}
	stmt := s.(*sqlite3.SQLiteStmt)
	c.byKey[sql] = c.order.PushFront(&cachedStmt{sql: sql, stmt: stmt})
	if c.order.Len() > c.max {
		old := c.order.Remove(c.order.Back()).(*cachedStmt)
		delete(c.byKey, old.sql)
		old.stmt.Close()
	}
	return stmt, nil
}

func (c *stmtCache) close() {
	for e := c.order.Front(); e != nil; e = e.Next() {
		e.Value.(*cachedStmt).stmt.Close()
	}
	c.order.Init()
	clear(c.byKey)
}
