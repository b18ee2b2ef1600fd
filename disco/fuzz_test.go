package disco

import "testing"

// -disco-config comes from an operator's file or flag: nothing in it may crash the node.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		`{"name":"rqlite","port":4002}`, `{"name":"x","service":"y","server":"127.0.0.1:53"}`,
		`{"endpoints":["h:2379"],"dial-timeout":"5s","username":"u","password":"p"}`,
		`{"address":"c:8500","tls_config":{"ca_pem":"AAAA","insecure_skip_verify":true},"basic_auth":{"username":"u"}}`,
		`null`, `[]`, `{"port":-1}`, `{"dial-timeout":1e99}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		NewDNS(ModeDNS, b, 4002)
		NewDNS(ModeDNSSRV, b, 4002)
		NewEtcd(b, "k", Self{}, quiet())
		NewConsul(b, "k", Self{}, quiet())
	})
}
