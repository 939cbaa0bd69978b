package main

import (
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// canForge returns: on Linux the tests can send from the server's own
// socket.
func canForge(t *testing.T) { t.Helper() }

// sendFromServersSocket sends payload to `to` from the server's own
// socket, found among this process's descriptors by its address. The
// datagram so leaves with the server's address as its source: what an
// attacker forges with a raw socket, made here without privileges.
func sendFromServersSocket(t *testing.T, server string, payload []byte, to string) {
	t.Helper()
	dst, err := net.ResolveUDPAddr("udp4", to)
	require.NoError(t, err)
	sa := &syscall.SockaddrInet4{Port: dst.Port}
	copy(sa.Addr[:], dst.IP.To4())
	require.NoError(t, syscall.Sendto(socketOf(t, server), payload, 0, sa))
}

// socketOf returns the descriptor of this process's UDP socket bound to
// addr (an IPv4 host:port).
func socketOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	port, err := strconv.Atoi(p)
	require.NoError(t, err)
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if typ, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TYPE); err != nil || typ != syscall.SOCK_DGRAM {
			continue
		}
		sa, err := syscall.Getsockname(fd)
		if err != nil {
			continue
		}
		if in4, ok := sa.(*syscall.SockaddrInet4); ok && in4.Port == port {
			return fd
		}
	}
	t.Fatalf("no UDP socket bound to %s in this process", addr)
	return -1
}
