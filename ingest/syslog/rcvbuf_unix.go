//go:build unix

package syslog

import (
	"net"
	"syscall"
)

// readBufferOf returns the socket receive buffer the kernel granted, or -1.
func readBufferOf(c *net.UDPConn) int {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1
	}
	size := -1
	raw.Control(func(fd uintptr) {
		if v, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF); err == nil {
			size = v
		}
	})
	return size
}
