// Package tlsconfig builds the TLS configurations raftlited uses on its HTTP port and between nodes: TLS
// 1.2 at least, certificates reloaded when their files change, optional verification of client
// certificates and of a peer's common name.
package tlsconfig
