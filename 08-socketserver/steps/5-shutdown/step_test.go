package main

// These tests run the step's Server in the test process, on a listener
// of their own (127.0.0.1, port 0), and call Shutdown as main does on
// Ctrl+C: a signal would stop the whole test binary.

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// wait bounds every blocking step; quiet is how long "nothing arrives"
// is given to prove itself.
const (
	wait  = 5 * time.Second
	quiet = 200 * time.Millisecond
)

// The fix for step 4's pitfall: each client hears why it is cut off,
// and Shutdown returns once every handler has.
func TestShutdownSaysByeToEachClientAndWaitsForItsHandler(t *testing.T) {
	for _, h := range []struct {
		name    string
		handler Handler
		read    func(*bufio.Reader) (string, error)
	}{
		{"upper", HandlerFunc(upper), func(r *bufio.Reader) (string, error) { return r.ReadString('\n') }},
		{"cmd", cmdHandler{}, func(r *bufio.Reader) (string, error) { b, err := readFrame(r); return string(b), err }},
	} {
		t.Run(h.name, func(t *testing.T) {
			srv := &Server{Handler: h.handler}
			addr, served := serve(t, srv)
			var clients []*bufio.Reader
			for i := 0; i < 3; i++ {
				conn := dial(t, addr)
				replies := bufio.NewReader(conn)
				// Mid-conversation: each has had a reply.
				_, err := io.WriteString(conn, "whoami\n")
				require.NoError(t, err)
				_, err = h.read(replies)
				require.NoError(t, err)
				clients = append(clients, replies)
			}

			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			require.NoError(t, srv.Shutdown(ctx))
			for _, replies := range clients {
				bye, err := h.read(replies)
				require.NoError(t, err)
				assert.Equal(t, "bye: server shutting down\n", bye)
				_, err = replies.ReadByte()
				assert.ErrorIs(t, err, io.EOF, "then the connection ends")
			}
			assert.ErrorIs(t, receive(t, served), ErrServerClosed)
		})
	}
}

func TestShutdownGivesUpAtItsDeadline(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	// This handler ignores the connection and waits for the test.
	srv := &Server{Handler: HandlerFunc(func(net.Conn) {
		close(entered)
		<-release
	})}
	addr, _ := serve(t, srv)
	dial(t, addr)
	receive(t, entered)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, srv.Shutdown(ctx), context.DeadlineExceeded)
}

// The pitfall of this step, which step 6 fixes: a client that connects
// and says nothing keeps its handler, its goroutine and its descriptor
// for as long as it likes. Nothing ever tells it to go.
func TestSilentClientIsNeverToldToGo(t *testing.T) {
	addr, _ := serve(t, &Server{Handler: HandlerFunc(upper)})
	conn := dial(t, addr)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(quiet)))
	_, err := conn.Read(make([]byte, 1))
	assert.True(t, errors.Is(err, os.ErrDeadlineExceeded), "the connection should still be open and quiet, got %v", err)
}

// ---- helpers ----

// serve runs srv on a fresh loopback listener and shuts it down when the
// test ends. served receives what Serve returned.
func serve(t *testing.T, srv *Server) (addr string, served <-chan error) {
	t.Helper()
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), quiet)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return ln.Addr().String(), done
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// receive waits for one value from ch, failing the test if none comes.
func receive[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("nothing received within %v", wait)
		var zero T
		return zero
	}
}
