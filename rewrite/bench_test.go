package rewrite

import "testing"

// noopInsert is a typical 100-byte write with nothing to rewrite.
const noopInsert = "INSERT INTO users(id, name, email, created_at, score) VALUES(?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"

func BenchmarkRewriteNoop(b *testing.B) {
	rnd := newRand()
	b.SetBytes(int64(len(noopInsert)))
	b.ReportAllocs()
	for b.Loop() {
		Rewrite(noopInsert, all, testNow, rnd)
	}
}

// BenchmarkRewriteNoopNamed has a column named like a time function, so the prefilter lets it through
// and the statement is tokenized only to find nothing.
func BenchmarkRewriteNoopNamed(b *testing.B) {
	in := "INSERT INTO events(id, date, time, kind, payload) VALUES(?, ?, ?, ?, ?)"
	rnd := newRand()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		Rewrite(in, all, testNow, rnd)
	}
}

func BenchmarkRewriteTime(b *testing.B) {
	in := "INSERT INTO events(id, at, day, kind) VALUES(?, datetime('now'), date(), ?)"
	rnd := newRand()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		Rewrite(in, all, testNow, rnd)
	}
}

func BenchmarkRewriteRandom(b *testing.B) {
	in := "INSERT INTO tokens(id, token, salt) VALUES(random(), randomblob(16), ?)"
	rnd := newRand()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		Rewrite(in, all, testNow, rnd)
	}
}
