//go:build exercise || solution

package main

import (
	"context"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests guard main.go, the part given to you: they pass on the
// starter as on the solution.

func TestServerKeepsAcceptingWhileOutOfFileDescriptors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	fake := &failingListener{Listener: ln, errno: syscall.EMFILE, fails: 3}
	out := newLines()
	srv := &Server{Handler: HandlerFunc(upper), IdleTimeout: wait, Log: out}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, fake) }()

	// The client waits in the backlog through three failures, then is
	// served: the server backed off and tried again.
	c := dialLines(t, ln.Addr().String())
	assert.Equal(t, "HELLO", c.ask(t, "hello"))
	cancel()
	assert.NoError(t, receive(t, done), "a shutdown is not an error")
	log := out.String()
	assert.Equal(t, 1, strings.Count(log, "accept failed"), "a streak of failures is logged once:\n%s", log)
	assert.Contains(t, log, "docs/errors.md#emfile")
	assert.Contains(t, log, "accepting again after 3 failed attempts")
}

func TestServeReturnsAnErrorWhenItsListenerBreaks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln.Close() // closed under the server, not by a shutdown
	srv := &Server{Handler: HandlerFunc(upper), IdleTimeout: wait, Log: io.Discard}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	// main turns this error into exit status 1, so that a supervisor
	// restarts the server; a nil here would exit 0.
	assert.ErrorIs(t, receive(t, done), net.ErrClosed)
}

func TestUpperNeverAnswersWithMoreBytesThanItWasSent(t *testing.T) {
	srv := startProgram(t)
	c := dialLines(t, srv.addr)
	// The longest line there is, of bytes that are not UTF-8: each
	// would become U+FFFD, three bytes, in bytes.ToUpper.
	invalid := strings.Repeat("\xff", maxLine-1)
	assert.Equal(t, invalid, c.ask(t, invalid), "bytes that are not UTF-8 pass through")
	// ASCII letters are upper-cased, as in the lesson; every other
	// byte passes through (bytes.ToUpper would make "ɐ", 2 bytes, the
	// 3-byte "Ɐ").
	assert.Equal(t, "HéLLO ɐ \xffX", c.ask(t, "héllo ɐ \xffx"))
	for _, line := range []string{invalid, "ɐɐɐɐ", "a\xffb\xfe"} {
		assert.LessOrEqual(t, len(upperASCII([]byte(line))), len(line))
	}
}

// failingListener fails its first Accepts with errno, the way a kernel
// out of descriptors does, then accepts for real.
type failingListener struct {
	net.Listener
	errno syscall.Errno
	mu    sync.Mutex
	fails int
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept", l.errno)}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}
