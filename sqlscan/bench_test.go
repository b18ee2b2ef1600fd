package sqlscan

import (
	"strings"
	"testing"
)

const simpleInsert = "INSERT INTO users(id, name, email, created_at, score) VALUES(?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"

func BenchmarkSplitSimple(b *testing.B) {
	b.SetBytes(int64(len(simpleInsert)))
	b.ReportAllocs()
	for b.Loop() {
		Split(simpleInsert)
	}
}

func BenchmarkSplitMany(b *testing.B) {
	src := strings.Repeat(simpleInsert+";\n", 100)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		Split(src)
	}
}

func BenchmarkAnalyze(b *testing.B) {
	b.SetBytes(int64(len(simpleInsert)))
	b.ReportAllocs()
	for b.Loop() {
		Analyze(simpleInsert)
	}
}

func BenchmarkScanner(b *testing.B) {
	b.SetBytes(int64(len(simpleInsert)))
	b.ReportAllocs()
	for b.Loop() {
		s := NewScanner(simpleInsert)
		for s.Next().Kind != EOF {
		}
	}
}
