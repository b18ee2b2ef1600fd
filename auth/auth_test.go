package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func mustParse(t *testing.T, s string) *Store {
	t.Helper()
	st, err := Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestAllow(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("h4shed"), bcrypt.MinCost)
	st := mustParse(t, `[
		{"username": "admin", "password": "secret", "perms": ["all"]},
		{"username": "reader", "password": "r", "perms": ["query", "backup"]},
		{"username": "hashed", "password": "`+string(hash)+`", "perms": ["execute"]},
		{"username": "*", "perms": ["status", "ready"]}
	]`)
	for _, tc := range []struct {
		user, pass string
		perm       Perm
		want       bool
	}{
		{"admin", "secret", Execute, true},
		{"admin", "secret", UI, true},
		{"admin", "wrong", Execute, false},
		{"admin", "", Execute, false},
		{"reader", "r", Query, true},
		{"reader", "r", Backup, true},
		{"reader", "r", Execute, false},
		{"reader", "R", Query, false},
		{"hashed", "h4shed", Execute, true},
		{"hashed", "h4shed", Execute, true}, // again: now from the cache of verified passwords
		{"hashed", "h4shed!", Execute, false},
		{"hashed", string(hash), Execute, false}, // the hash itself is not the password
		{"", "", Status, true},                   // "*" has status: everyone, even anonymous
		{"nobody", "x", Ready, true},             // ... even with credentials that match nothing
		{"", "", Query, false},
		{"nobody", "x", Query, false},
	} {
		if got := st.Allow(tc.user, tc.pass, tc.perm); got != tc.want {
			t.Errorf("Allow(%q, %q, %s) = %v, want %v", tc.user, tc.pass, tc.perm, got, tc.want)
		}
	}
	var none *Store
	if !none.Allow("", "", Execute) || none.Enabled() {
		t.Error("without a credentials file, everything must be allowed")
	}
}

func TestParseRejectsMistakes(t *testing.T) {
	for in, want := range map[string]string{
		`{"username": "a"}`:                                                                      "not a JSON array",
		`[{"password": "x", "perms": ["all"]}]`:                                                  "has no username",
		`[{"username": "a", "perms": ["all"]}]`:                                                  "has no password",
		`[{"username": "a", "password": "x", "perms": ["exeucte"]}]`:                             `unknown permission "exeucte"`,
		`[{"username": "a", "password": "x"}, {"username": "a", "password": "y"}]`:               "listed twice",
		`[{"username": "a", "password": "$2a$10$` + strings.Repeat("!", 53) + `", "perms": []}]`: "not a valid one",
	} {
		if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%s) = %v, want an error containing %q", in, err, want)
		}
	}
}

func TestPasswordForJoinAs(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.json")
	os.WriteFile(path, []byte(`[{"username": "j", "password": "pw", "perms": ["join"]},
		{"username": "h", "password": "`+string(hash)+`", "perms": ["join"]}]`), 0o600)
	st, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := st.Password("j"); err != nil || p != "pw" {
		t.Errorf("Password(j) = %q, %v", p, err)
	}
	if _, err := st.Password("h"); err == nil || !strings.Contains(err.Error(), "bcrypt") {
		t.Errorf("Password of a hashed user: %v", err)
	}
	if _, err := st.Password("nobody"); err == nil {
		t.Error("Password of an unknown user succeeded")
	}
}

// Parse never panics, and a file it accepts never lets a wrong password in.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`[{"username": "a", "password": "p", "perms": ["all"]}, {"username": "*", "perms": ["status"]}]`))
	f.Add([]byte(`[{"username": "h", "password": "$2a$04$abcdefghijklmnopqrstuuVx0Uq5YxH2rJ3UqE1e8m1lqGq1z1m2e", "perms": []}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := Parse(b)
		if err != nil {
			return
		}
		for name, u := range st.users {
			if name == Everyone || u.hashed {
				continue
			}
			if st.Authenticate(name, string(u.password)+"x") {
				t.Fatalf("user %q accepted a wrong password", name)
			}
		}
	})
}
