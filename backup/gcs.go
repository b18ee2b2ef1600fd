package backup

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// gcsStorage keeps backups in a Google Cloud Storage bucket, through its JSON API, authenticated as a
// service account (a signed JWT exchanged for an access token).
type gcsStorage struct {
	http     *http.Client
	endpoint string
	bucket   string
	name     string
	creds    serviceAccount

	mu      sync.Mutex
	token   string
	expires time.Time
}

// serviceAccount is what a service account's JSON key file holds that we use.
type serviceAccount struct {
	ClientEmail string `json:"client_email"`
	PrivateKey  string `json:"private_key"`
	TokenURI    string `json:"token_uri"`
	key         *rsa.PrivateKey
}

const (
	defaultGCSEndpoint = "https://storage.googleapis.com"
	defaultTokenURI    = "https://oauth2.googleapis.com/token"
	gcsScope           = "https://www.googleapis.com/auth/devstorage.read_write"
	gcsIDMetadataKey   = "rqlite-auto-backup-id"
)

func newGCS(c *GCSConfig) (*gcsStorage, error) {
	b, err := os.ReadFile(c.CredentialsPath)
	if err != nil {
		return nil, fmt.Errorf(`gcs: read "credentials_path": %w`, err)
	}
	var sa serviceAccount
	if err := json.Unmarshal(b, &sa); err != nil {
		return nil, fmt.Errorf("gcs: credentials file %s is not a service account key (JSON): %w", c.CredentialsPath, err)
	}
	if sa.ClientEmail == "" || sa.PrivateKey == "" {
		return nil, fmt.Errorf("gcs: credentials file %s lacks client_email or private_key: is it a service account key?", c.CredentialsPath)
	}
	block, _ := pem.Decode([]byte(sa.PrivateKey))
	if block == nil {
		return nil, fmt.Errorf("gcs: credentials file %s: private_key is not PEM", c.CredentialsPath)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("gcs: credentials file %s: private_key: %w", c.CredentialsPath, err)
	}
	var ok bool
	if sa.key, ok = key.(*rsa.PrivateKey); !ok {
		return nil, fmt.Errorf("gcs: credentials file %s: private_key is not an RSA key", c.CredentialsPath)
	}
	// Google's key files name their token endpoint; older ones do not, and get Google's.
	if sa.TokenURI == "" {
		sa.TokenURI = defaultTokenURI
	}
	endpoint := strings.TrimSuffix(c.Endpoint, "/")
	if endpoint == "" {
		endpoint = defaultGCSEndpoint
	}
	return &gcsStorage{http: &http.Client{}, endpoint: endpoint, bucket: c.Bucket, name: c.Name, creds: sa}, nil
}

func (g *gcsStorage) Name() string { return g.name }

func (g *gcsStorage) Destination(name string) string { return "gs://" + g.bucket + "/" + name }

// accessToken returns a cached token, or a new one if less than two minutes of it remain.
func (g *gcsStorage) accessToken(ctx context.Context) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.token != "" && time.Until(g.expires) > 2*time.Minute {
		return g.token, nil
	}
	assertion, err := g.creds.signedJWT(time.Now())
	if err != nil {
		return "", err
	}
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.creds.TokenURI, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("gcs: token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := g.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("gcs: get an access token from %s: %w", g.creds.TokenURI, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("gcs: get an access token from %s: %s: %s", g.creds.TokenURI, resp.Status, bytes.TrimSpace(body))
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("gcs: token endpoint %s answered without a token: %s", g.creds.TokenURI, bytes.TrimSpace(body))
	}
	g.token, g.expires = tok.AccessToken, time.Now().Add(time.Duration(tok.ExpiresIn)*time.Second)
	return g.token, nil
}

// signedJWT is the service account's assertion: RS256 over the claims, valid for an hour.
func (sa *serviceAccount) signedJWT(now time.Time) (string, error) {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT"})
	claims, _ := json.Marshal(map[string]any{
		"iss": sa.ClientEmail, "scope": gcsScope, "aud": sa.TokenURI,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, sa.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("gcs: sign token request: %w", err)
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

func (g *gcsStorage) do(ctx context.Context, method, u string, body io.Reader, size int64, contentType string) (*http.Response, error) {
	token, err := g.accessToken(ctx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return g.http.Do(req)
}

// Upload is one multipart upload: the object's metadata as JSON, then the file, streamed with a length
// known in advance.
func (g *gcsStorage) Upload(ctx context.Context, name string, f *os.File, size int64, id string) error {
	var head, tail bytes.Buffer
	mw := multipart.NewWriter(&head)
	meta, _ := json.Marshal(map[string]any{"name": name, "metadata": map[string]string{gcsIDMetadataKey: id}})
	pw, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/json; charset=UTF-8"}})
	pw.Write(meta)
	mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/octet-stream"}})
	tail.WriteString("\r\n--" + mw.Boundary() + "--\r\n")
	body := io.MultiReader(&head, io.NewSectionReader(f, 0, size), &tail)
	u := g.endpoint + "/upload/storage/v1/b/" + url.PathEscape(g.bucket) + "/o?uploadType=multipart"
	resp, err := g.do(ctx, http.MethodPost, u, body, int64(head.Len())+size+int64(tail.Len()), "multipart/related; boundary="+mw.Boundary())
	if err != nil {
		return fmt.Errorf("upload to %s: %w", g.Destination(name), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("upload to %s: upload failed: %s", g.Destination(name), readError(resp))
	}
	return nil
}

func (g *gcsStorage) objectURL(name string) string {
	return g.endpoint + "/storage/v1/b/" + url.PathEscape(g.bucket) + "/o/" + url.PathEscape(name)
}

func (g *gcsStorage) ID(ctx context.Context, name string) (string, error) {
	resp, err := g.do(ctx, http.MethodGet, g.objectURL(name), nil, 0, "")
	if err != nil {
		return "", fmt.Errorf("read the backup ID of %s: %w", g.Destination(name), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return "", ErrNoID
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("read the backup ID of %s: %s", g.Destination(name), readError(resp))
	}
	var obj struct {
		Metadata map[string]string `json:"metadata"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&obj); err != nil {
		return "", fmt.Errorf("read the backup ID of %s: %w", g.Destination(name), err)
	}
	if id := obj.Metadata[gcsIDMetadataKey]; id != "" {
		return id, nil
	}
	return "", ErrNoID
}

func (g *gcsStorage) Download(ctx context.Context, name string, w io.Writer) (int64, error) {
	resp, err := g.do(ctx, http.MethodGet, g.objectURL(name)+"?alt=media", nil, 0, "")
	if err != nil {
		return 0, fmt.Errorf("download from %s: %w", g.Destination(name), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("download from %s: download failed: %s", g.Destination(name), readError(resp))
	}
	n, err := io.Copy(w, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("got %d bytes of %d", n, resp.ContentLength)
	}
	if err != nil {
		return n, fmt.Errorf("download from %s: %w", g.Destination(name), err)
	}
	return n, nil
}

// readError is an error answer's status and the start of its body.
func readError(resp *http.Response) string {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if b := bytes.TrimSpace(body); len(b) > 0 {
		return resp.Status + ": " + string(b)
	}
	return resp.Status
}
