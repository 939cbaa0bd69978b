//go:build exercise || solution

package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests guard main.go, the part given to you: the first two pass
// on the starter as on the solution.

func TestServerKeepsAcceptingWhileOutOfFileDescriptors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	fake := &failingListener{Listener: ln, errno: syscall.EMFILE, fails: 3}
	out := newLines()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serve(ctx, fake, handle, wait, out) }()

	// The client waits in the backlog through three failures, then is
	// served: the server backed off and tried again.
	c := dialTo(t, ln.Addr().String())
	c.send(t, raw(typeText, "there?"))
	assert.Equal(t, "T THERE?", c.next(t))
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
	done := make(chan error, 1)
	go func() { done <- serve(context.Background(), ln, handle, wait, io.Discard) }()
	// main turns this error into exit status 1, so that a supervisor
	// restarts the server; a nil here would exit 0.
	assert.ErrorIs(t, receive(t, done), net.ErrClosed)
}

func TestTextAnswerIsNeverLargerThanTheText(t *testing.T) {
	c := dialServer(t)
	// The largest text there is, of bytes that are not UTF-8: each
	// would become U+FFFD, three bytes, in bytes.ToUpper, and the
	// answer would be over the limit.
	invalid := strings.Repeat("\xff", maxPayload)
	c.send(t, raw(typeText, invalid))
	assert.Equal(t, show(message{kind: typeText, payload: []byte(invalid)}), c.next(t))
	// ASCII letters are upper-cased, as in the lesson; every other
	// byte passes through (bytes.ToUpper would make "ɐ", 2 bytes, the
	// 3-byte "Ɐ").
	c.send(t, raw(typeText, "héllo ɐ \xffx"))
	assert.Equal(t, show(message{kind: typeText, payload: []byte("HéLLO ɐ \xffX")}), c.next(t))
}

// dialTo connects to a server someone else started.
func dialTo(t *testing.T, addr string) *testClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return &testClient{conn: conn, replies: bufio.NewReader(conn)}
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
