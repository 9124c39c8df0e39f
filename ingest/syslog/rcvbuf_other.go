//go:build !unix

package syslog

import "net"

// readBufferOf is not known on this platform.
func readBufferOf(*net.UDPConn) int { return -1 }

func forceReadBuffer(*net.UDPConn, int) {}
