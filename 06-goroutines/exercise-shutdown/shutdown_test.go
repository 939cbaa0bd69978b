//go:build exercise || solution

package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"path"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wait bounds every blocking step of a test, so a broken server fails the
// test instead of hanging it.
const wait = 5 * time.Second

func TestAJobInFlightAtShutdownStillGetsItsReply(t *testing.T) {
	srv := startServer(t)
	c := connect(t, srv.addr)
	c.send(t, "work 300ms\n")
	// The server logs the job once it has started: the stop below comes
	// in the middle of it.
	srv.out.waitFor(t, c.name+": working 300ms")
	srv.stop() // what Ctrl+C does

	assert.Equal(t, "done 300ms\n", c.line(t), "the job's reply")
	assert.Equal(t, "bye: server shutting down\n", c.line(t), "then the goodbye")
	c.expectCleanEOF(t)
	require.NoError(t, srv.wait(t), "shutdown is not an error")
}

func TestWaitingClientsAreToldAndSeeACleanEOF(t *testing.T) {
	srv := startServer(t)
	clients := make([]*client, 5)
	for i := range clients {
		clients[i] = connect(t, srv.addr)
	}
	// One of them is half-way through a line: it is woken all the same.
	clients[0].send(t, "work 1")
	srv.stop()
	for _, c := range clients {
		assert.Equal(t, "bye: server shutting down\n", c.line(t), "%s", c.name)
		c.expectCleanEOF(t)
	}
	require.NoError(t, srv.wait(t))
}

func TestServerStopsOnlyAfterTheLastReplyIsWritten(t *testing.T) {
	srv := startServer(t)
	c := connect(t, srv.addr)
	c.send(t, "work 200ms\n")
	srv.out.waitFor(t, c.name+": working")
	srv.stop()
	c.line(t) // the reply: the first test checks what it says
	c.Close() // so that the server need not wait for this client to close
	require.NoError(t, srv.wait(t))

	// The log is written line by line in order: the job ended before
	// the server said it had stopped.
	log := srv.out.String()
	done := strings.Index(log, c.name+": done 200ms")
	stopped := strings.Index(log, "stopped")
	require.NotEqual(t, -1, done, "the job never finished; the log:\n%s", log)
	assert.Less(t, done, stopped, "the server stopped before the job was done; the log:\n%s", log)
}

func TestNoNewClientIsAcceptedOnceShutdownBegins(t *testing.T) {
	srv := startServer(t)
	c := connect(t, srv.addr)
	c.send(t, "work 300ms\n")
	srv.out.waitFor(t, c.name+": working")
	srv.stop()
	srv.out.waitFor(t, "shutting down")

	// The job still runs, but the listener is closed: the kernel
	// refuses a new connection at once.
	conn, err := net.DialTimeout("tcp", srv.addr, wait)
	if err == nil {
		conn.Close()
	}
	assert.True(t, errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.Errno(10061)),
		"want connection refused, got %v", err)
}

func TestGraceEndsAJobThatTakesTooLong(t *testing.T) {
	srv := startServer(t, "-grace", "200ms")
	c := connect(t, srv.addr)
	c.send(t, "work 1m\n")
	srv.out.waitFor(t, c.name+": working")

	begin := time.Now()
	srv.stop()
	require.NoError(t, srv.wait(t))
	took := time.Since(begin)
	// A timer never fires early, so the job had its 200 ms; then it was
	// cut off, long before its minute.
	assert.GreaterOrEqual(t, took, 200*time.Millisecond, "the job did not get its grace period")
	assert.Less(t, took, wait, "the grace period did not end the job")
	assert.Contains(t, srv.out.String(), "grace period over\n")
	assert.Contains(t, srv.out.String(), c.name+": job cut off")
}

func TestNoGoroutineLeaksAfterShutdown(t *testing.T) {
	// A short grace: these clients never close their end, so the
	// server's goodbyes would otherwise wait a second for them.
	srv := startServer(t, "-grace", "100ms")
	idle := connect(t, srv.addr)
	busy := connect(t, srv.addr)
	busy.send(t, "work 1m\n")
	srv.out.waitFor(t, busy.name+": working")
	half := connect(t, srv.addr)
	half.send(t, "work 1")

	srv.stop()
	require.NoError(t, srv.wait(t))
	assert.Equal(t, "bye: server shutting down\n", idle.line(t))
	// The clients are all still connected: only the server's own
	// goroutines could have ended them.
	assertNoGoroutinesLeft(t)
}

func TestBadLinesGetAnErrorAndTheConversationGoesOn(t *testing.T) {
	srv := startServer(t)
	c := connect(t, srv.addr)
	for _, bad := range []string{"hello", "work", "work soon", "work -1s", "work 2h"} {
		c.send(t, bad+"\n")
		assert.Equal(t, "error: say work and a duration up to 1m0s, such as work 300ms\n", c.line(t), "after %q", bad)
	}
	c.send(t, "work 1ms\n")
	assert.Equal(t, "done 1ms\n", c.line(t))
}

// client is a test client: its connection, a buffered reader that the
// test alone reads through, and its address as the server logs it.
type client struct {
	net.Conn
	r    *bufio.Reader
	name string
}

// connect dials addr and reads the greeting.
func connect(t testing.TB, addr string) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	c := &client{Conn: conn, r: bufio.NewReader(conn), name: conn.LocalAddr().String()}
	require.Equal(t, greeting, c.line(t))
	return c
}

func (c *client) send(t testing.TB, s string) {
	t.Helper()
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(wait)))
	_, err := io.WriteString(c, s)
	require.NoError(t, err)
}

// line reads one line, with its "\n", within wait.
func (c *client) line(t testing.TB) string {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	line, err := c.r.ReadString('\n')
	require.NoError(t, err, "%s: reading a line, got %q so far", c.name, line)
	return line
}

// expectCleanEOF checks the server ended the connection with a FIN, and
// sent nothing more.
func (c *client) expectCleanEOF(t testing.TB) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	rest, err := io.ReadAll(c.r)
	require.NoError(t, err, "%s: want a clean end of stream (FIN), not a reset", c.name)
	assert.Empty(t, string(rest))
	c.Close() // a polite client closes when it reads the end
}

// testServer is the program running in this process.
type testServer struct {
	addr string
	out  *lines
	stop context.CancelFunc
	done chan error
}

// startServer runs the program on a free port with the extra flags in
// args, and waits for it to print the address it listens on. The server
// is stopped, and waited for, when the test ends.
func startServer(t testing.TB, args ...string) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &testServer{out: newLines(), stop: cancel, done: make(chan error, 1)}
	args = append([]string{"-addr", "127.0.0.1:0"}, args...)
	go func() { srv.done <- run(ctx, args, srv.out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-srv.done:
		case <-time.After(2 * wait):
			t.Error("server did not stop after cancel")
		}
	})
	first := srv.out.waitFor(t, "")
	addr, ok := strings.CutPrefix(first, "listening on ")
	require.True(t, ok, "first line should give the address, got %q", first)
	srv.addr = addr
	return srv
}

// wait returns the program's result, failing the test if it runs on.
func (s *testServer) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // let Cleanup see it too
		return err
	case <-time.After(2 * wait):
		t.Fatal("server did not return")
		return nil
	}
}

// lines is an io.Writer that keeps each complete line, so a test can wait
// for a line instead of sleeping. It never blocks the program.
type lines struct {
	mu      sync.Mutex
	all     strings.Builder
	part    string
	got     []string
	read    int           // lines already returned by waitFor
	changed chan struct{} // closed and replaced when a line arrives
}

func newLines() *lines { return &lines{changed: make(chan struct{})} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.part += string(p)
	for {
		line, rest, ok := strings.Cut(l.part, "\n")
		if !ok {
			break
		}
		l.got = append(l.got, line)
		l.part = rest
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// waitFor returns the next line that contains s, skipping those before it.
func (l *lines) waitFor(t testing.TB, s string) string {
	t.Helper()
	deadline := time.After(wait)
	for {
		l.mu.Lock()
		for l.read < len(l.got) {
			line := l.got[l.read]
			l.read++
			if strings.Contains(line, s) {
				l.mu.Unlock()
				return line
			}
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no line containing %q within %v; so far:\n%s", s, wait, l.String())
			return ""
		}
	}
}

// assertNoGoroutinesLeft waits until no goroutine is running code from
// this package's non-test files, and fails listing them if some still are
// after half a second: time enough for goroutines on their way out, too
// short for one still talking to a client.
func assertNoGoroutinesLeft(t testing.TB) {
	t.Helper()
	// This package's files as the compiler recorded them, which is how
	// stack traces name them, whatever the working directory is (a test
	// binary built on one system may run on another, under Wine say).
	_, self, _, ok := runtime.Caller(0)
	require.True(t, ok, "no caller information")
	prefix := path.Dir(self) + "/"
	var left []string
	deadline := time.Now().Add(500 * time.Millisecond)
	for {
		left = left[:0]
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		// The first goroutine is this one, running the test.
		for _, g := range strings.Split(string(buf), "\n\n")[1:] {
			for _, line := range strings.Split(g, "\n") {
				// A frame's file line reads "\t/path/main.go:42 +0x1d".
				file, _, _ := strings.Cut(strings.TrimSpace(line), " ")
				if i := strings.LastIndex(file, ":"); i > 0 {
					file = file[:i]
				}
				if strings.HasPrefix(file, prefix) && !strings.HasSuffix(file, "_test.go") {
					left = append(left, g)
					break
				}
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		runtime.Gosched()
	}
	assert.Empty(t, left, "goroutines still running the server's code")
}
