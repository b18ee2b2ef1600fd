package disco

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftlite/raftlite/internal/testservers"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestReadConfig(t *testing.T) {
	t.Setenv("DISCO_NAME", "from-env")
	path := filepath.Join(t.TempDir(), "disco.json")
	os.WriteFile(path, []byte(`{"name":"$DISCO_NAME"}`), 0o600)
	if got := string(ReadConfig(path)); got != `{"name":"from-env"}` {
		t.Errorf("file: %s", got)
	}
	if got := string(ReadConfig(`{"name":"${DISCO_NAME}.svc"}`)); got != `{"name":"from-env.svc"}` {
		t.Errorf("inline: %s", got)
	}
	if ReadConfig("") != nil {
		t.Error("no config is not nil")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		mode, json, want string
	}{
		{ModeDNS, `{"name":`, "error reading DNS configuration"},
		{ModeDNS, `{"nmae":"x"}`, `unknown field "nmae"`},
		{ModeDNS, `{"name":"x","port":0}`, `"port" 0 is not a port`},
		{ModeDNSSRV, `{"name":"x","server":"nocolon"}`, `"server" "nocolon" is not host:port`},
		{ModeConsul, `{"address":"http://consul:8500"}`, "create Consul config: address should not contain HTTP or HTTPS"},
		{ModeConsul, `{"token_file":"/nonexistent/token"}`, "create Consul client: token_file"},
		{ModeConsul, `{"adress":"x"}`, `create Consul config: -disco-config for consul-kv: unknown field "adress"`},
		{ModeEtcd, `{"endpoints":[]}`, `"endpoints" is empty`},
		{ModeEtcd, `{"endpoints":"x"}`, "create etcd config"},
		{ModeEtcd, `{"dial-timeout":"soon"}`, "create etcd config"},
	} {
		var err error
		switch c.mode {
		case ModeDNS, ModeDNSSRV:
			_, err = NewDNS(c.mode, []byte(c.json), 4002)
		case ModeConsul:
			_, err = NewConsul([]byte(c.json), "rqlite", Self{}, quiet())
		case ModeEtcd:
			_, err = NewEtcd([]byte(c.json), "rqlite", Self{}, quiet())
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: got %v, want %q", c.mode, c.json, err, c.want)
		}
	}
	// rqlite's etcd keys that only tune its Go client are accepted.
	if _, err := NewEtcd([]byte(`{"endpoints":["h:2379"],"dial-timeout":"5s","auto-sync-interval":0,"backoff-wait-between":100000000,"reject-old-cluster":true}`), "k", Self{}, quiet()); err != nil {
		t.Error(err)
	}
}

func TestDNSLookup(t *testing.T) {
	srv := testservers.StartDNS(t)
	d, err := NewDNS(ModeDNS, []byte(`{"name":"nodes.test","server":"`+srv.Addr+`"}`), 4002)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Lookup(context.Background()); err == nil || d.Status()["last_error"] == nil {
		t.Errorf("a name that does not exist: %v %v", err, d.Status())
	}
	srv.SetA("nodes.test", "10.0.0.3", "10.0.0.1", "10.0.0.2")
	addrs, err := d.Lookup(context.Background())
	if want := []string{"10.0.0.1:4002", "10.0.0.2:4002", "10.0.0.3:4002"}; err != nil || !reflect.DeepEqual(addrs, want) {
		t.Fatalf("lookup: %v %v", addrs, err)
	}
	st := d.Status()
	if st["mode"] != "dns" || st["name"] != "nodes.test" || st["port"] != 4002 || !reflect.DeepEqual(st["last_addresses"], addrs) || st["last_error"] != nil {
		t.Errorf("status %v", st)
	}

	srv.SetA("a.test", "10.0.0.7")
	srv.SetA("b.test", "10.0.0.8")
	srv.SetSRV("raft", "svc.test", testservers.SRVTarget{Host: "a.test", Port: 7002}, testservers.SRVTarget{Host: "b.test", Port: 8002}, testservers.SRVTarget{Host: "gone.test", Port: 9002})
	s, err := NewDNS(ModeDNSSRV, []byte(`{"name":"svc.test","service":"raft","server":"`+srv.Addr+`"}`), 4002)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err = s.Lookup(context.Background())
	if want := []string{"10.0.0.7:7002", "10.0.0.8:8002"}; err != nil || !reflect.DeepEqual(addrs, want) {
		t.Fatalf("SRV lookup: %v %v", addrs, err)
	}
	if st := s.Status(); st["dns_name:"] != "_raft._tcp.svc.test." || st["service"] != "raft" {
		t.Errorf("SRV status %v", st)
	}
}

// The leader key's life in a real etcd and in the Consul stand-in: absent, claimed once, read, kept
// current by the leader's reports.
func TestKV(t *testing.T) {
	etcd := testservers.StartEtcd(t)
	consul := testservers.StartConsulKV(t, "secret-token")
	self := Self{ID: "n1", APIAddr: "http://10.0.0.1:4001", Addr: "10.0.0.1:4002"}
	other := Self{ID: "n2", APIAddr: "http://10.0.0.2:4001", Addr: "10.0.0.2:4002"}
	mk := map[string]func(Self) (*KV, error){
		"etcd": func(s Self) (*KV, error) {
			return NewEtcd([]byte(`{"endpoints":["`+strings.TrimPrefix(etcd.Endpoint, "http://")+`"]}`), "clusterA", s, quiet())
		},
		"consul": func(s Self) (*KV, error) {
			return NewConsul([]byte(`{"address":"`+consul.Addr+`","token":"secret-token"}`), "clusterA", s, quiet())
		},
	}
	for name, newKV := range mk {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			a, err := newKV(self)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := newKV(other)
			if l, err := a.Leader(ctx); err != nil || l != "" {
				t.Fatalf("empty key: %q %v", l, err)
			}
			if ok, err := a.Claim(ctx); err != nil || !ok {
				t.Fatalf("first claim: %v %v", ok, err)
			}
			if ok, err := b.Claim(ctx); err != nil || ok {
				t.Fatalf("second claim: %v %v", ok, err)
			}
			if l, err := b.Leader(ctx); err != nil || l != self.Addr {
				t.Fatalf("leader %q %v", l, err)
			}
			// b becomes leader: its report replaces the value at once.
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { b.Report(rctx, func() bool { return true }); close(done) }()
			deadline := time.Now().Add(5 * time.Second)
			for {
				if l, _ := a.Leader(ctx); l == other.Addr && b.Status()["last_contact"] != "0001-01-01T00:00:00Z" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the report did not replace the key")
				}
				time.Sleep(50 * time.Millisecond)
			}
			cancel()
			<-done
			if st := b.Status(); st["mode"] == nil || st["last_contact"] == "0001-01-01T00:00:00Z" || st["last_error"] != nil {
				t.Errorf("status %v", st)
			}
		})
	}
	// The value is rqlite's JSON, under rqlite's key.
	v, ok := consul.Get("clusterA/leader")
	var s Self
	if !ok || json.Unmarshal(v, &s) != nil || s != other {
		t.Errorf("consul value %s", v)
	}
	// Without the token, Consul refuses, and the error says so.
	noToken, _ := NewConsul([]byte(`{"address":"`+consul.Addr+`"}`), "clusterA", self, quiet())
	if _, err := noToken.Leader(context.Background()); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("no token: %v", err)
	}
	// etcd down: a clear error naming it.
	etcd.Stop()
	e, _ := mk["etcd"](self)
	if _, err := e.Leader(context.Background()); err == nil || !strings.Contains(err.Error(), "failed to get leader from etcd") {
		t.Errorf("etcd down: %v", err)
	}
}

// etcd with authentication on: the credentials in -disco-config are used, wrong ones are refused with
// etcd's reason.
func TestEtcdCredentials(t *testing.T) {
	etcd := testservers.StartEtcd(t)
	post := func(path, body, token string) string {
		req, _ := http.NewRequest(http.MethodPost, etcd.Endpoint+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s %s", path, resp.Status, b)
		}
		return string(b)
	}
	post("/v3/auth/user/add", `{"name":"root","password":"rootpw"}`, "")
	post("/v3/auth/user/grant", `{"user":"root","role":"root"}`, "")
	post("/v3/auth/enable", `{}`, "")
	ep := strings.TrimPrefix(etcd.Endpoint, "http://")
	good, err := NewEtcd([]byte(`{"endpoints":["`+ep+`"],"username":"root","password":"rootpw"}`), "auth", Self{ID: "n1", Addr: "10.0.0.1:4002"}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := good.Claim(context.Background()); err != nil || !ok {
		t.Fatalf("claim with credentials: %v %v", ok, err)
	}
	if l, err := good.Leader(context.Background()); err != nil || l != "10.0.0.1:4002" {
		t.Fatalf("leader with credentials: %q %v", l, err)
	}
	for name, cfg := range map[string]string{
		"no credentials": `{"endpoints":["` + ep + `"]}`,
		"wrong password": `{"endpoints":["` + ep + `"],"username":"root","password":"nope"}`,
	} {
		bad, _ := NewEtcd([]byte(cfg), "auth", Self{}, quiet())
		if _, err := bad.Leader(context.Background()); err == nil {
			t.Errorf("%s: read the key", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
