//go:build !unix

package transport

import "net"

func peekAlive(net.Conn) (alive, known bool) { return false, false }
