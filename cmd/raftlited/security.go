package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/raftlite/raftlite/auth"
	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/tlsconfig"
	"github.com/raftlite/raftlite/transport"
)

// securityFlags are the TLS and authentication flags.
type securityFlags struct {
	auth, joinAs string

	httpCert, httpKey, httpCA string
	httpVerifyClient          bool
	httpVerifyCommonName      string

	nodeCert, nodeKey, nodeCA string
	nodeVerifyClient          bool
	nodeNoVerify              bool
	nodeVerifyServerName      string
	nodeVerifyCommonName      string
}

func (c *securityFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.auth, "auth", "", "Path to the credentials file (JSON: users, passwords or bcrypt hashes, permissions)")
	fs.StringVar(&c.joinAs, "join-as", "", "Username in the credentials file whose password is sent when joining")
	fs.StringVar(&c.httpCert, "http-cert", "", "Path to the HTTPS X.509 certificate (enables HTTPS, with -http-key)")
	fs.StringVar(&c.httpKey, "http-key", "", "Path to the HTTPS X.509 private key")
	fs.StringVar(&c.httpCA, "http-ca-cert", "", "Path to the CA certificate that signs HTTPS client certificates (and HTTPS join targets)")
	fs.BoolVar(&c.httpVerifyClient, "http-verify-client", false, "Require and verify client certificates on HTTPS (mutual TLS)")
	fs.StringVar(&c.httpVerifyCommonName, "http-verify-common-name", "", "Common name required in HTTPS client certificates")
	fs.StringVar(&c.nodeCert, "node-cert", "", "Path to the X.509 certificate for node-to-node TLS (with -node-key)")
	fs.StringVar(&c.nodeKey, "node-key", "", "Path to the X.509 private key for node-to-node TLS")
	fs.StringVar(&c.nodeCA, "node-ca-cert", "", "Path to the CA certificate that signs the other nodes' certificates (if not set, the system's roots)")
	fs.BoolVar(&c.nodeVerifyClient, "node-verify-client", false, "Require and verify the certificates of nodes that connect (always on with node TLS; accepted for rqlite compatibility)")
	fs.BoolVar(&c.nodeNoVerify, "node-no-verify", false, "Skip verification of other nodes' certificates")
	fs.StringVar(&c.nodeVerifyServerName, "node-verify-server-name", "", "Host name expected in other nodes' certificates")
	fs.StringVar(&c.nodeVerifyCommonName, "node-verify-common-name", "", "Common name required in the certificates of nodes that connect")
}

func (c *securityFlags) validate() error {
	if (c.httpCert == "") != (c.httpKey == "") {
		return errors.New("either both -http-cert and -http-key must be set, or neither")
	}
	if (c.nodeCert == "") != (c.nodeKey == "") {
		return errors.New("either both -node-cert and -node-key must be set, or neither")
	}
	if c.httpVerifyClient && c.httpCert == "" {
		return errors.New("-http-verify-client needs HTTPS (-http-cert and -http-key)")
	}
	if c.httpVerifyCommonName != "" && !c.httpVerifyClient {
		return errors.New("-http-verify-common-name requires -http-verify-client")
	}
	if c.nodeVerifyCommonName != "" && c.nodeNoVerify {
		return errors.New("-node-verify-common-name cannot be checked with -node-no-verify")
	}
	if c.nodeVerifyClient && c.nodeCert == "" {
		return errors.New("-node-verify-client needs node TLS (-node-cert and -node-key)")
	}
	if c.httpVerifyClient && c.httpCA == "" {
		return errors.New("-http-verify-client needs -http-ca-cert: without it any publicly issued certificate would be accepted")
	}
	if c.joinAs != "" && c.auth == "" {
		return errors.New("-join-as names a user of the credentials file: -auth is needed too")
	}
	return nil
}

// security is what the flags resolve to.
type security struct {
	auth       *auth.Store
	joinAs     *command.Credentials
	httpTLS    *tls.Config // nil: plain HTTP
	httpClient *http.Client
	nodeTLS    *tls.Config // nil: plain TCP between nodes
	nodeDial   transport.Dialer
	// nodeSystemRoots: node TLS verifies peers against the system's roots (no -node-ca-cert).
	nodeSystemRoots bool
}

func (c *securityFlags) load() (*security, error) {
	sec := &security{}
	if c.auth != "" {
		st, err := auth.ReadFile(c.auth)
		if err != nil {
			return nil, err
		}
		sec.auth = st
		if c.joinAs != "" {
			pw, err := st.Password(c.joinAs)
			if err != nil {
				return nil, fmt.Errorf("-join-as: %w", err)
			}
			sec.joinAs = &command.Credentials{Username: c.joinAs, Password: pw}
		}
	}
	if c.httpCert != "" {
		cfg, err := tlsconfig.Server(tlsconfig.Options{CertFile: c.httpCert, KeyFile: c.httpKey, CAFile: c.httpCA,
			VerifyClient: c.httpVerifyClient, CommonName: c.httpVerifyCommonName})
		if err != nil {
			return nil, fmt.Errorf("HTTPS: %w", err)
		}
		sec.httpTLS = cfg
	}
	// Joining through an HTTPS address: trust the HTTP CA, and present this node's certificate to a node that
	// verifies clients.
	clientCfg, err := tlsconfig.Client(tlsconfig.Options{CAFile: c.httpCA, CertFile: c.httpCert, KeyFile: c.httpKey})
	if err != nil {
		return nil, fmt.Errorf("HTTPS client: %w", err)
	}
	sec.httpClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: clientCfg}}
	if c.nodeCert != "" {
		// Node TLS is always mutual: a node that connects must show a certificate the CA signed (the system's
		// roots when -node-ca-cert is not given), or it could send raft messages, snapshots and internal calls
		// as if it were a member.
		server, err := tlsconfig.Server(tlsconfig.Options{CertFile: c.nodeCert, KeyFile: c.nodeKey, CAFile: c.nodeCA,
			VerifyClient: !c.nodeNoVerify, CommonName: c.nodeVerifyCommonName})
		if err != nil {
			return nil, fmt.Errorf("node TLS: %w", err)
		}
		server.NextProtos = nil
		client, err := tlsconfig.Client(tlsconfig.Options{CertFile: c.nodeCert, KeyFile: c.nodeKey, CAFile: c.nodeCA,
			NoVerify: c.nodeNoVerify, ServerName: c.nodeVerifyServerName})
		if err != nil {
			return nil, fmt.Errorf("node TLS: %w", err)
		}
		sec.nodeTLS = server
		sec.nodeSystemRoots = c.nodeCA == "" && !c.nodeNoVerify
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}, Config: client}
		sec.nodeDial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	return sec, nil
}
