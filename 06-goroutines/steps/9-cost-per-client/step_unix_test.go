//go:build unix

package main

import (
	"context"
	"io"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keepAlive reports SO_KEEPALIVE of the server's side of the one
// connection that srv has open.
func keepAlive(t *testing.T, srv *server) int {
	t.Helper()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	require.Len(t, srv.conns, 1)
	on := -1
	for conn := range srv.conns {
		raw, err := conn.SyscallConn()
		require.NoError(t, err)
		require.NoError(t, raw.Control(func(fd uintptr) {
			on, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		}))
		require.NoError(t, err)
	}
	return on
}

// The fix for step 8's pitfall: the server listens with
// net.ListenConfig{KeepAlive: -1}, so no accepted connection has
// keep-alive, and each costs one setsockopt (TCP_NODELAY), not five.
func TestAcceptedConnectionsHaveKeepAliveOff(t *testing.T) {
	s := newServer(io.Discard, wait)
	srv := start(t, func(ctx context.Context, stdout io.Writer) error {
		s.stdout = stdout
		return s.serve(ctx, "127.0.0.1:0", 10)
	})
	dialGreeted(t, srv.addr)
	assert.Equal(t, 0, keepAlive(t, s), "SO_KEEPALIVE on the accepted connection")
}
