package main

// These tests run the step's Server in the test process, on a listener
// of their own (127.0.0.1, port 0): Serve takes the listener, so nothing
// needs building, and a test can hold two clients at once.

import (
	"bufio"
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

// The fix for step 1's pitfall: a client is served while another is
// still connected.
func TestSecondClientIsServedWhileTheFirstIsConnected(t *testing.T) {
	addr := serve(t, &Server{Handler: HandlerFunc(upper)})
	first, firstReplies := dial(t, addr)
	assert.Equal(t, "FIRST\n", ask(t, first, firstReplies, "first"))
	second, secondReplies := dial(t, addr)
	assert.Equal(t, "SECOND\n", ask(t, second, secondReplies, "second"))
	assert.Equal(t, "FIRST AGAIN\n", ask(t, first, firstReplies, "first again"))
}

// -sequential is still step 1's server, with the same handler.
func TestSequentialStillServesOneClientAtATime(t *testing.T) {
	addr := serve(t, &Server{Handler: HandlerFunc(upper), Sequential: true})
	first, firstReplies := dial(t, addr)
	assert.Equal(t, "FIRST\n", ask(t, first, firstReplies, "first"))
	second, secondReplies := dial(t, addr)
	_, err := io.WriteString(second, "second\n")
	require.NoError(t, err)
	require.NoError(t, second.SetReadDeadline(time.Now().Add(quiet)))
	_, err = secondReplies.ReadString('\n')
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "the second client should wait")
}

// ---- helpers ----

// serve runs srv on a fresh loopback listener until the test ends.
func serve(t *testing.T, srv *Server) string {
	t.Helper()
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go srv.Serve(ln)
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn, bufio.NewReader(conn)
}

// ask sends one line and returns the reply line.
func ask(t *testing.T, conn net.Conn, replies *bufio.Reader, line string) string {
	t.Helper()
	_, err := io.WriteString(conn, line+"\n")
	require.NoError(t, err)
	reply, err := replies.ReadString('\n')
	require.NoError(t, err)
	return reply
}
