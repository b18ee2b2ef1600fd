//go:build unix

package transport

import (
	"net"
	"syscall"
)

// peekAlive asks the socket, without blocking, whether anything is waiting on it: nothing (EAGAIN) means
// the peer is there and quiet; EOF, bytes or an error mean the connection is not fit for a new request.
// known is false if conn is not a socket.
func peekAlive(conn net.Conn) (alive, known bool) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false, true
	}
	var buf [1]byte
	err = raw.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
		return true // never wait for readiness
	})
	return err == nil && alive, true
}
