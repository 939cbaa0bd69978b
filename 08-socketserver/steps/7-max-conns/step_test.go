package main

// These tests run the step's Server in the test process, on a listener
// of their own (127.0.0.1, port 0), and call its Serve with a listener
// that fails as a full descriptor table would: filling the real table
// would starve every program on the machine.

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
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

// The fix for step 6's pitfall: past MaxConns, a client waits in the
// backlog, and is served when a slot frees up.
func TestClientsBeyondMaxConnsWaitInTheBacklog(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	addr := serve(t, &Server{Handler: HandlerFunc(upper), MaxConns: 2, IdleTimeout: wait}, ln)
	first, firstReplies := dial(t, addr)
	assert.Equal(t, "ONE\n", ask(t, first, firstReplies, "one"))
	second, secondReplies := dial(t, addr)
	assert.Equal(t, "TWO\n", ask(t, second, secondReplies, "two"))

	// Both slots are taken: the third connection is complete (the kernel
	// accepted it into the backlog) but nobody reads it yet.
	third, thirdReplies := dial(t, addr)
	_, err = io.WriteString(third, "three\n")
	require.NoError(t, err)
	require.NoError(t, third.SetReadDeadline(time.Now().Add(quiet)))
	_, err = thirdReplies.ReadString('\n')
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "the third client should wait")

	first.Close()
	require.NoError(t, third.SetReadDeadline(time.Now().Add(wait)))
	reply, err := thirdReplies.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "THREE\n", reply)
}

// The pitfall of this step, which step 8 fixes: when Accept fails
// because the process has no descriptor left (EMFILE), Serve gives up,
// and the server is dead though the trouble would pass.
func TestRunningOutOfDescriptorsStopsTheServer(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	defer ln.Close()
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	flaky := &flakyListener{Listener: ln, errs: []error{emfile}}
	srv := &Server{Handler: HandlerFunc(upper)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(flaky) }()
	select {
	case err := <-served:
		assert.True(t, errors.Is(err, syscall.EMFILE), "Serve returned %v", err)
	case <-time.After(wait):
		t.Fatal("Serve should have given up on EMFILE")
	}
}

// ---- helpers ----

// flakyListener fails its first Accepts with the given errors.
type flakyListener struct {
	net.Listener
	errs []error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		return nil, err
	}
	return l.Listener.Accept()
}

// serve runs srv on ln and shuts it down when the test ends.
func serve(t *testing.T, srv *Server, ln net.Listener) string {
	t.Helper()
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		srv.Shutdown(ctx)
	})
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

// What the steps before built still holds: the command service answers
// in frames, and a silent client is told why in one, then a clean EOF.
func TestCommandRepliesAreStillFramesAndASilentClientIsToldInOne(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	addr := serve(t, &Server{Handler: cmdHandler{}, IdleTimeout: 100 * time.Millisecond}, ln)
	_, replies := dial(t, addr)
	got, err := readFrame(replies)
	require.NoError(t, err)
	assert.Equal(t, "bye: idle for 100ms, closing\n", string(got))
	_, err = readFrame(replies)
	assert.ErrorIs(t, err, io.EOF)
}
