package system_test

import (
	"database/sql"
	"testing"
	"time"

	"github.com/rqlite/gorqlite"
	_ "github.com/rqlite/gorqlite/stdlib"
)

// gorqlite, the Go client written for rqlite, used as its users use it against a 3-node cluster:
// connecting through a follower, writes, parameterised statements, transactions, queued writes, unified
// requests and reads at every consistency level, then the database/sql driver on top of it.
func TestGorqliteClient(t *testing.T) {
	nodes := cluster(t, 3)
	leader := waitLeader(t, nodes...)
	f := followers(leader, nodes)[0]

	conn, err := gorqlite.Open("http://" + f.httpAddr + "/")
	if err != nil {
		t.Fatalf("open through a follower: %v", err)
	}
	defer conn.Close()
	if l, err := conn.Leader(); err != nil || l != leader.httpAddr {
		t.Errorf("Leader() = %q, %v; want %s", l, err, leader.httpAddr)
	}
	if peers, err := conn.Peers(); err != nil || len(peers) != 3 {
		t.Errorf("Peers() = %v, %v", peers, err)
	}

	if _, err := conn.WriteOne("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, age INTEGER, seen DATETIME)"); err != nil {
		t.Fatal(err)
	}
	wr, err := conn.WriteOneParameterized(gorqlite.ParameterizedStatement{
		Query: "INSERT INTO people(name, age, seen) VALUES(?, ?, ?)", Arguments: []any{"fiona", 20, "2024-01-02 03:04:05"}})
	if err != nil || wr.LastInsertID != 1 || wr.RowsAffected != 1 {
		t.Fatalf("parameterised write: %+v %v", wr, err)
	}
	// A transaction whose second statement fails writes nothing.
	if err := conn.SetExecutionWithTransaction(true); err != nil {
		t.Fatal(err)
	}
	res, err := conn.Write([]string{"INSERT INTO people(name, age) VALUES('declan', 30)", "INSERT INTO nosuch VALUES(1)"})
	if err == nil || len(res) != 2 || res[1].Err == nil {
		t.Errorf("failing transaction: %+v %v", res, err)
	}
	conn.SetExecutionWithTransaction(false)
	if _, err := conn.WriteParameterized([]gorqlite.ParameterizedStatement{
		{Query: "INSERT INTO people(name, age) VALUES(?, ?)", Arguments: []any{"declan", 30}},
		{Query: "INSERT INTO people(name, age) VALUES(:name, :age)", Arguments: []any{map[string]any{"name": "eve", "age": 41}}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.QueueOneParameterized(gorqlite.ParameterizedStatement{
		Query: "INSERT INTO people(name, age) VALUES(?, ?)", Arguments: []any{"queued", 1}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the queued write", 10*time.Second, func() bool {
		c, _ := leader.count("people")
		return c == 4
	})

	for _, name := range []string{"none", "weak", "linearizable", "strong"} {
		level, err := gorqlite.ParseConsistencyLevel(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.SetConsistencyLevel(level); err != nil {
			t.Fatal(err)
		}
		qr, err := conn.QueryOneParameterized(gorqlite.ParameterizedStatement{
			Query: "SELECT name, age, seen FROM people WHERE age > ? ORDER BY id", Arguments: []any{10}})
		if err != nil {
			t.Fatalf("read at %v: %v", level, err)
		}
		var names []string
		for qr.Next() {
			var name string
			var age int64
			var seen gorqlite.NullTime
			if err := qr.Scan(&name, &age, &seen); err != nil {
				t.Fatalf("scan at %v: %v", level, err)
			}
			if name == "fiona" && (!seen.Valid || !seen.Time.Equal(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))) {
				t.Errorf("DATETIME at %v: %+v", level, seen)
			}
			names = append(names, name)
		}
		if len(names) != 3 || names[0] != "fiona" || names[2] != "eve" {
			t.Errorf("read at %v: %v", level, names)
		}
	}
	rr, err := conn.Request([]string{"UPDATE people SET age = age + 1 WHERE name = 'fiona'", "SELECT age FROM people WHERE name = 'fiona'"})
	if err != nil || len(rr) != 2 || rr[0].Write == nil || rr[0].Write.RowsAffected != 1 || rr[1].Query == nil {
		t.Fatalf("unified request: %+v %v", rr, err)
	}

	// The database/sql driver on top of gorqlite.
	db, err := sql.Open("rqlite", "http://"+nodes[2].httpAddr+"/")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("INSERT INTO people(name, age) VALUES(?, ?)", "sqldriver", 5); err != nil {
		t.Fatalf("database/sql exec: %v", err)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM people").Scan(&n); err != nil || n != 5 {
		t.Errorf("database/sql count = %d, %v", n, err)
	}
	waitConverged(t, nodes...)
}
