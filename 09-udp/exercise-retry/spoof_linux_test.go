//go:build exercise || solution

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
// socket, found among this process's descriptors by its address, so
// that it leaves with the server's address as its source: what an
// attacker forges with a raw socket.
func sendFromServersSocket(t *testing.T, server string, payload []byte, to string) {
	t.Helper()
	dst, err := net.ResolveUDPAddr("udp4", to)
	require.NoError(t, err)
	_, p, err := net.SplitHostPort(server)
	require.NoError(t, err)
	port, err := strconv.Atoi(p)
	require.NoError(t, err)
	sa := &syscall.SockaddrInet4{Port: dst.Port}
	copy(sa.Addr[:], dst.IP.To4())
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
		if in4, ok := mustSockname(fd).(*syscall.SockaddrInet4); ok && in4.Port == port {
			require.NoError(t, syscall.Sendto(fd, payload, 0, sa))
			return
		}
	}
	t.Fatalf("no UDP socket bound to %s in this process", server)
}

func mustSockname(fd int) syscall.Sockaddr {
	sa, _ := syscall.Getsockname(fd)
	return sa
}
