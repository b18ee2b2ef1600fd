package testservers

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TokenServer is a stand-in for Google's OAuth token endpoint (oauth2.googleapis.com cannot be reached
// here): it verifies a service account's signed JWT as Google does (RS256 signature by the account's key,
// audience, scope, expiry) and issues access tokens. CredentialsFile is that account's JSON key file,
// whose token_uri points here.
type TokenServer struct {
	URL             string
	CredentialsFile string

	mu     sync.Mutex
	issued map[string]bool
	grants int
}

// StartTokenServer starts the stand-in with a new service account.
func StartTokenServer(t testing.TB) *TokenServer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ts := &TokenServer{issued: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.serve(w, r, &key.PublicKey)
	}))
	t.Cleanup(srv.Close)
	ts.URL = srv.URL + "/token"
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	creds, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "raftlite-test", "client_email": "backup@raftlite-test.iam.gserviceaccount.com",
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "token_uri": ts.URL,
	})
	ts.CredentialsFile = filepath.Join(t.TempDir(), "service-account.json")
	if err := os.WriteFile(ts.CredentialsFile, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	return ts
}

func (ts *TokenServer) serve(w http.ResponseWriter, r *http.Request, pub *rsa.PublicKey) {
	fail := func(msg string) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"invalid_grant","error_description":%q}`, msg)
	}
	if r.ParseForm() != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		fail("bad grant_type")
		return
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		fail("malformed JWT")
		return
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err != nil || rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil {
		fail("Invalid JWT Signature.")
		return
	}
	var claims struct {
		Aud   string `json:"aud"`
		Scope string `json:"scope"`
		Exp   int64  `json:"exp"`
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if json.Unmarshal(payload, &claims) != nil || claims.Aud != ts.URL || claims.Exp < time.Now().Unix() ||
		!strings.Contains(claims.Scope, "devstorage") {
		fail("bad claims")
		return
	}
	ts.mu.Lock()
	ts.grants++
	tok := fmt.Sprintf("token-%d", ts.grants)
	ts.issued[tok] = true
	ts.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":%q,"expires_in":3600,"token_type":"Bearer"}`, tok)
}

// Grants is how many tokens the stand-in issued.
func (ts *TokenServer) Grants() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.grants
}

// Guard puts a proxy in front of a storage server that refuses requests without a token this stand-in
// issued (the emulator itself accepts any), and returns the proxy's URL.
func (ts *TokenServer) Guard(t testing.TB, backend string) string {
	t.Helper()
	u, err := url.Parse(backend)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		ts.mu.Lock()
		valid := ok && ts.issued[tok]
		ts.mu.Unlock()
		if !valid {
			http.Error(w, `{"error":{"code":401,"message":"Invalid Credentials"}}`, http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
