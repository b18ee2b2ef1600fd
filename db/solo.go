package db

import (
	"strings"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/sqlscan"
)

// soloKind says whether a request must be applied on its own, outside the batch transaction.
type soloKind int

const (
	soloNone   soloKind = iota
	soloPragma          // it starts with PRAGMA foreign_keys = ..., as SQL dumps do
	soloVacuum          // it is made only of VACUUM statements
)

func soloMode(req *command.Request) soloKind {
	if req == nil || len(req.GetStatements()) == 0 {
		return soloNone
	}
	if first := leadingPiece(req); first != "" {
		if _, name, setting, ok := sqlscan.Pragma(first); ok && setting && strings.EqualFold(name, "foreign_keys") {
			return soloPragma
		}
	}
	for _, st := range req.GetStatements() {
		for _, p := range sqlscan.Split(st.GetSql()) {
			if sqlscan.Analyze(p.Text).Kind != sqlscan.Vacuum || hasInto(p.Text) {
				return soloNone
			}
		}
	}
	return soloVacuum
}

// leadingPiece is the first SQL statement of a request.
func leadingPiece(req *command.Request) string {
	sts := req.GetStatements()
	if len(sts) == 0 {
		return ""
	}
	pieces := sqlscan.Split(sts[0].GetSql())
	if len(pieces) == 0 {
		return ""
	}
	return pieces[0].Text
}

// hasInto reports VACUUM INTO, which would write a file on every replica: it is left to fail inside the
// batch transaction ("cannot VACUUM from within a transaction") rather than run alone.
func hasInto(stmt string) bool {
	sc := sqlscan.NewScanner(stmt)
	for t := sc.Next(); t.Kind != sqlscan.EOF; t = sc.Next() {
		if t.IsKeyword(stmt, "INTO") {
			return true
		}
	}
	return false
}
