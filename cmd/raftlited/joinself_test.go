package main

import "testing"

func TestJoinsItself(t *testing.T) {
	own := []string{"localhost:4002", "localhost:4001", "0.0.0.0:4012", "127.0.0.1:4011"}
	for _, tc := range []struct {
		target string
		want   bool
	}{
		{"localhost:4001", true},
		{"http://localhost:4001", true},
		{"https://localhost:4001/", true},
		{"127.0.0.1:4002", true},  // another spelling of the advertised Raft address
		{"localhost:4011", true},  // another spelling of the bound HTTP address
		{"127.0.0.1:4012", true},  // bound to every interface
		{"localhost:4003", false}, // another port
		{"192.0.2.1:4001", false}, // another host
		{"no-such-host.invalid:4001", false},
		{"not an address", false},
	} {
		if got := joinsItself(tc.target, own...); got != tc.want {
			t.Errorf("joinsItself(%q) = %v, want %v", tc.target, got, tc.want)
		}
	}
}
