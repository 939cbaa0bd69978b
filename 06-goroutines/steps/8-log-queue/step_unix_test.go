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

// The pitfall, fixed in step 9: Go's net turns TCP keep-alive on for
// every accepted connection, four setsockopt calls each, though the idle
// timeout already finds a client that vanished.
func TestEveryAcceptedConnectionHasKeepAliveOn(t *testing.T) {
	s := newServer(io.Discard)
	srv := start(t, func(ctx context.Context, stdout io.Writer) error {
		s.stdout = stdout
		return s.serve(ctx, "127.0.0.1:0", 10)
	})
	dialGreeted(t, srv.addr)
	assert.Equal(t, 1, keepAlive(t, s), "SO_KEEPALIVE on the accepted connection")
}
