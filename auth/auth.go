package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Perm is a permission string of the credentials file.
type Perm string

// The permissions, and what each grants.
const (
	All             Perm = "all"               // everything
	Join            Perm = "join"              // join as a voter
	JoinReadOnly    Perm = "join-read-only"    // join as a non-voter
	JoinReadReplica Perm = "join-read-replica" // join as a non-voter
	Remove          Perm = "remove"            // remove a node
	Execute         Perm = "execute"           // write
	Query           Perm = "query"             // read
	Status          Perm = "status"            // /status, /nodes, /debug, /metrics
	Ready           Perm = "ready"             // /readyz
	Backup          Perm = "backup"            // /db/backup
	Load            Perm = "load"              // /db/load, /boot
	Snapshot        Perm = "snapshot"          // /snapshot, /reap
	LeaderOps       Perm = "leader-ops"        // /leader
	UI              Perm = "ui"                // the web console
)

var known = []Perm{All, Join, JoinReadOnly, JoinReadReplica, Remove, Execute, Query, Status, Ready, Backup, Load,
	Snapshot, LeaderOps, UI}

// Everyone is the username whose permissions every caller has, with or without credentials.
const Everyone = "*"

// Store holds the users of a credentials file. A nil *Store allows everything (no -auth given).
type Store struct {
	users map[string]*user

	// verified remembers, per user, a digest of the last password that matched a bcrypt hash: bcrypt is
	// slow by design, and a client sends its password with every request.
	mu       sync.Mutex
	verified map[string][32]byte
}

type user struct {
	password []byte // plain text, or a bcrypt hash if hashed
	hashed   bool
	perms    []Perm
}

// entry is one object of the credentials file.
type entry struct {
	Username string   `json:"username"`
	Password *string  `json:"password"`
	Perms    []string `json:"perms"`
}

// ReadFile reads a credentials file.
func ReadFile(path string) (*Store, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read credentials file: %w", err)
	}
	s, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("credentials file %s: %w", path, err)
	}
	return s, nil
}

// Parse reads the contents of a credentials file. Unknown permissions, duplicate users and users other than
// "*" without a password are errors: a typo must not silently lock a user out or let anyone in.
func Parse(b []byte) (*Store, error) {
	var entries []entry
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, fmt.Errorf("not a JSON array of users: %w", err)
	}
	s := &Store{users: map[string]*user{}, verified: map[string][32]byte{}}
	for i, e := range entries {
		if e.Username == "" {
			return nil, fmt.Errorf("user %d has no username", i+1)
		}
		if _, dup := s.users[e.Username]; dup {
			return nil, fmt.Errorf("user %q is listed twice", e.Username)
		}
		u := &user{}
		if e.Password != nil {
			u.password = []byte(*e.Password)
			u.hashed = isBcrypt(*e.Password)
			if u.hashed {
				if err := bcrypt.CompareHashAndPassword(u.password, nil); err != nil && !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
					return nil, fmt.Errorf("user %q: password looks like a bcrypt hash but is not a valid one: %v", e.Username, err)
				}
			}
		} else if e.Username != Everyone {
			return nil, fmt.Errorf("user %q has no password", e.Username)
		}
		for _, p := range e.Perms {
			perm := Perm(strings.ToLower(p))
			if !slices.Contains(known, perm) {
				return nil, fmt.Errorf("user %q: unknown permission %q", e.Username, p)
			}
			u.perms = append(u.perms, perm)
		}
		s.users[e.Username] = u
	}
	return s, nil
}

func isBcrypt(p string) bool {
	return len(p) == 60 && (strings.HasPrefix(p, "$2a$") || strings.HasPrefix(p, "$2b$") || strings.HasPrefix(p, "$2y$"))
}

func (u *user) has(p Perm) bool {
	return u != nil && (slices.Contains(u.perms, p) || slices.Contains(u.perms, All))
}

// Enabled reports whether requests are checked at all.
func (s *Store) Enabled() bool { return s != nil }

// Allow reports whether a caller with these credentials (username "" when none were sent) holds perm:
// permissions of "*" are everyone's, whatever credentials come with the request; otherwise the user must
// exist, the password match, and the user hold perm or "all".
func (s *Store) Allow(username, password string, perm Perm) bool {
	if s == nil {
		return true
	}
	if s.users[Everyone].has(perm) {
		return true
	}
	if username == "" {
		return false
	}
	return s.Authenticate(username, password) && s.users[username].has(perm)
}

// dummyPassword is compared against when the user does not exist, so that a failed check for an unknown
// name takes the time a plain-text user's does. (A user with a bcrypt hash still takes bcrypt's time; making
// every unknown name pay that too would hand attackers a cheap way to burn the node's CPU.)
var dummyPassword = sha256.Sum256([]byte("raftlite: no such user"))

// Authenticate reports whether the password is the user's.
func (s *Store) Authenticate(username, password string) bool {
	if s == nil {
		return true
	}
	u, ok := s.users[username]
	given := sha256.Sum256([]byte(password))
	if !ok || u.password == nil {
		subtle.ConstantTimeCompare(given[:], dummyPassword[:])
		return false
	}
	if !u.hashed {
		stored := sha256.Sum256(u.password)
		return subtle.ConstantTimeCompare(given[:], stored[:]) == 1
	}
	s.mu.Lock()
	last, ok := s.verified[username]
	s.mu.Unlock()
	if ok && subtle.ConstantTimeCompare(given[:], last[:]) == 1 {
		return true
	}
	if bcrypt.CompareHashAndPassword(u.password, []byte(password)) != nil {
		return false
	}
	s.mu.Lock()
	s.verified[username] = given
	s.mu.Unlock()
	return true
}

// ErrHashedPassword reports that a password is needed in plain text (to send it) but the file holds a hash.
var ErrHashedPassword = errors.New("the credentials file holds only a bcrypt hash of this user's password")

// Password returns a user's plain-text password, for -join-as: the joining node sends it to the cluster.
func (s *Store) Password(username string) (string, error) {
	if s == nil {
		return "", errors.New("no credentials file (-auth) given")
	}
	u, ok := s.users[username]
	if !ok || u.password == nil {
		return "", fmt.Errorf("user %q is not in the credentials file", username)
	}
	if u.hashed {
		return "", fmt.Errorf("user %q: %w; -join-as needs a user whose password is stored in plain text", username, ErrHashedPassword)
	}
	return string(u.password), nil
}
