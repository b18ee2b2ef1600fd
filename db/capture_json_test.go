package db

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

// The CDC encoder's strings and reals are byte for byte what encoding/json writes (rqlite's CDC JSON
// comes from encoding/json): escapes, HTML characters, invalid UTF-8, U+2028, exponents.
func TestCaptureJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "é", "<", ">", "&", "\"", "\\", "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f", "\x7f",
		"\u2028", "\u2029", "\xff", "\xc3", "日本", "\U0001F600", " ", "/"}
	for i := 0; i < 20000; i++ {
		var s string
		for n := rng.IntN(12); n > 0; n-- {
			s += alphabet[rng.IntN(len(alphabet))]
		}
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
		if got := appendJSONString(nil, []byte(s)); string(got) != string(want) {
			t.Fatalf("%q as bytes: got %s, want %s", s, got, want)
		}
	}
	floats := []float64{0, 1, -1, 2.5, 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 123456789e13, -1e-300, math.MaxFloat64,
		math.SmallestNonzeroFloat64, 0.1, 1.0 / 3, 1e100, -0.0}
	for i := 0; i < 20000; i++ {
		floats = append(floats, math.Float64frombits(rng.Uint64()))
	}
	for _, f := range floats {
		if math.IsInf(f, 0) || math.IsNaN(f) {
			if got := appendFloat(nil, f); string(got) != "null" {
				t.Fatalf("%v: got %s, want null", f, got)
			}
			continue
		}
		want, _ := json.Marshal(f)
		if got := appendFloat(nil, f); string(got) != string(want) {
			t.Fatalf("%v: got %s, want %s", f, got, want)
		}
	}
}
