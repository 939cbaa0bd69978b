//go:build unix

package main

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Go's net turns TCP keep-alive on for every accepted connection, four
// setsockopt calls each. This server has its own idle timeout, so it
// asks for none: the socket of an accepted client has SO_KEEPALIVE off.
func TestAcceptedConnectionsHaveKeepAliveOff(t *testing.T) {
	out := newLines()
	srv := &server{idle: wait, grace: wait, maxPerIP: 100, stdout: out,
		conns: make(map[*net.TCPConn]struct{}), perIP: make(map[netip.Addr]int)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.serve(ctx, "127.0.0.1:0", 10) }()
	t.Cleanup(func() { cancel(); <-done })
	addr, ok := strings.CutPrefix(out.next(t), "listening on ")
	require.True(t, ok)
	dialGreeted(t, addr)

	srv.mu.Lock()
	defer srv.mu.Unlock()
	require.Len(t, srv.conns, 1)
	for conn := range srv.conns {
		raw, err := conn.SyscallConn()
		require.NoError(t, err)
		var on int
		var sockErr error
		require.NoError(t, raw.Control(func(fd uintptr) {
			on, sockErr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		}))
		require.NoError(t, sockErr)
		assert.Zero(t, on, "SO_KEEPALIVE on the accepted connection")
	}
}
