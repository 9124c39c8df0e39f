//go:build linux

package syslog

import (
	"net"
	"syscall"
)

// forceReadBuffer asks for size with SO_RCVBUFFORCE, which passes
// net.core.rmem_max when the process has CAP_NET_ADMIN (a root service);
// without it the call fails and the plain SO_RCVBUF grant stays.
func forceReadBuffer(c *net.UDPConn, size int) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, size)
	})
}
