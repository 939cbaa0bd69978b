package main

// These tests run the step's Server in the test process, on a listener
// of their own (127.0.0.1, port 0), with an idle timeout of 100 ms so
// that they take a fraction of a second.

import (
	"bufio"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

const wait = 5 * time.Second

// The fix for step 5's pitfall: the silent client is told why, and the
// connection ends with a clean EOF.
func TestSilentClientIsToldAndClosedAfterIdleTimeout(t *testing.T) {
	t.Run("upper", func(t *testing.T) {
		addr := serve(t, &Server{Handler: HandlerFunc(upper), IdleTimeout: 100 * time.Millisecond})
		got, err := io.ReadAll(dial(t, addr))
		require.NoError(t, err)
		assert.Equal(t, "bye: idle for 100ms, closing\n", string(got))
	})
	t.Run("cmd", func(t *testing.T) {
		addr := serve(t, &Server{Handler: cmdHandler{}, IdleTimeout: 100 * time.Millisecond})
		replies := bufio.NewReader(dial(t, addr))
		got, err := readFrame(replies)
		require.NoError(t, err)
		assert.Equal(t, "bye: idle for 100ms, closing\n", string(got))
		_, err = readFrame(replies)
		assert.ErrorIs(t, err, io.EOF)
	})
}

// With -sequential, the silent client no longer holds the server: the
// next client is served once the idle timeout has cut it off.
func TestSequentialServerServesTheNextClientAfterASilentOne(t *testing.T) {
	addr := serve(t, &Server{Handler: HandlerFunc(upper), Sequential: true, IdleTimeout: 100 * time.Millisecond})
	dial(t, addr) // connects, and says nothing
	next := dial(t, addr)
	_, err := io.WriteString(next, "next\n")
	require.NoError(t, err)
	reply, err := bufio.NewReader(next).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "NEXT\n", reply)
}

// The pitfall of this step, which step 7 fixes: the server takes every
// client that comes, each with its goroutine and descriptor. Here 50 are
// all served at once; a flood of 100,000 would be too, until the process
// runs out of descriptors.
func TestEveryClientIsTakenHoweverManyCome(t *testing.T) {
	addr := serve(t, &Server{Handler: HandlerFunc(upper), IdleTimeout: wait})
	var all []*bufio.Reader
	var conns []net.Conn
	for i := 0; i < 50; i++ {
		conn := dial(t, addr)
		conns = append(conns, conn)
		all = append(all, bufio.NewReader(conn))
	}
	// Every one of them is being served, all at the same time.
	for i, conn := range conns {
		_, err := io.WriteString(conn, "here\n")
		require.NoError(t, err)
		reply, err := all[i].ReadString('\n')
		require.NoError(t, err, "client %d", i)
		assert.Equal(t, "HERE\n", reply)
	}
}

// ---- helpers ----

// serve runs srv on a fresh loopback listener and shuts it down when the
// test ends.
func serve(t *testing.T, srv *Server) string {
	t.Helper()
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn
}
