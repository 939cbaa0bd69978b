package main

// These tests run the step's Server in the test process and call its
// Serve with a listener that fails as a full descriptor table would:
// filling the real table would starve every program on the machine.

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

const wait = 5 * time.Second

// The fix for step 7's pitfall: the client that connected while Accept
// was failing is served once descriptors free up, and the loop paused
// between tries instead of spinning.
func TestAcceptRetriesUntilDescriptorsFreeUp(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	// The client connects first and waits in the backlog.
	conn, err := net.DialTimeout("tcp", ln.Addr().String(), wait)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))

	fail := func(errno syscall.Errno) error {
		return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
	}
	flaky := &flakyListener{Listener: ln, errs: []error{
		fail(syscall.EMFILE), fail(syscall.ECONNABORTED), fail(syscall.EMFILE), fail(syscall.ENFILE),
	}}
	srv := &Server{Handler: HandlerFunc(upper)}
	go srv.Serve(flaky)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		srv.Shutdown(ctx)
	})

	_, err = io.WriteString(conn, "still here\n")
	require.NoError(t, err)
	reply, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "STILL HERE\n", reply)

	// Pauses after the 2nd and 3rd descriptor failures (ECONNABORTED is
	// retried at once): at least 10 and 20 ms.
	calls := flaky.times()
	require.GreaterOrEqual(t, len(calls), 5)
	assert.GreaterOrEqual(t, calls[3].Sub(calls[2]), 10*time.Millisecond)
	assert.GreaterOrEqual(t, calls[4].Sub(calls[3]), 20*time.Millisecond)
}

// ---- helpers ----

// flakyListener fails its first Accepts with the given errors, and notes
// when each Accept was called.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	errs  []error
	calls []time.Time
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.calls = append(l.calls, time.Now())
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func (l *flakyListener) times() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.calls...)
}

// What the steps before built still holds: the command service answers
// in frames, and a silent client is told why in one, then a clean EOF.
func TestCommandRepliesAreStillFramesAndASilentClientIsToldInOne(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	srv := &Server{Handler: cmdHandler{}, IdleTimeout: 100 * time.Millisecond}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		srv.Shutdown(ctx)
	})
	conn, err := net.DialTimeout("tcp", ln.Addr().String(), wait)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	replies := bufio.NewReader(conn)
	got, err := readFrame(replies)
	require.NoError(t, err)
	assert.Equal(t, "bye: idle for 100ms, closing\n", string(got))
	_, err = readFrame(replies)
	assert.ErrorIs(t, err, io.EOF)
}
