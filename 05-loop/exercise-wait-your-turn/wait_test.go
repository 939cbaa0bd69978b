//go:build exercise || solution

package main

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// wait bounds every blocking step of a test, so a broken client fails
// the test instead of hanging it.
const wait = 5 * time.Second

// quiet is how long a test watches for a line that must not come yet.
// Silence cannot be proven, only observed for a while; it is also the
// least time the client waits in these tests, so its report can be
// checked against it.
const quiet = 100 * time.Millisecond

// greeting is what the lesson's server, 05-loop, says first. These
// tests play that server themselves, so that they decide when the
// client's turn comes.
const greeting = "welcome to 05-loop: every message you send comes back after OK...\n"

var (
	connectedLine = regexp.MustCompile(`^connected to (\S+) after (\S+)$`)
	greetedLine   = regexp.MustCompile(`^greeted after (\S+): (.*)$`)
)

func TestConnectSucceedsBeforeTheServerAccepts(t *testing.T) {
	// A listener nobody accepts on: the server is busy with someone
	// else. The kernel still completes the handshake.
	ln := listen(t)
	c := startClient(t, ln.Addr().String(), wait)

	line := c.out.next(t)
	m := connectedLine.FindStringSubmatch(line)
	require.NotNil(t, m, "want \"connected to ADDR after D\", got %q", line)
	assert.Equal(t, ln.Addr().String(), m[1])
	took, err := time.ParseDuration(m[2])
	require.NoError(t, err)
	assert.Less(t, took, wait, "connecting does not wait for Accept")

	// Nothing more yet: no greeting can come before Accept.
	c.out.silentFor(t, quiet)
}

func TestReportsHowLongItWaitedForItsTurn(t *testing.T) {
	ln := listen(t)
	c := startClient(t, ln.Addr().String(), wait)
	require.Regexp(t, connectedLine, c.out.next(t))
	c.out.silentFor(t, quiet) // the client waits at least this long

	// Its turn: accept it and greet it, as the lesson's server would.
	conn := accept(t, ln)
	_, err := io.WriteString(conn, greeting)
	require.NoError(t, err)

	line := c.out.next(t)
	m := greetedLine.FindStringSubmatch(line)
	require.NotNil(t, m, "want \"greeted after D: GREETING\", got %q", line)
	waited, err := time.ParseDuration(m[1])
	require.NoError(t, err)
	assert.GreaterOrEqual(t, waited, quiet, "the test kept it waiting for at least %v", quiet)
	assert.Equal(t, strings.TrimSuffix(greeting, "\n"), m[2])
	assert.NoError(t, c.wait(t))
}

func TestGivesUpWhenItsTurnDoesNotCome(t *testing.T) {
	ln := listen(t)
	c := startClient(t, ln.Addr().String(), 200*time.Millisecond)
	err := c.wait(t)
	require.Error(t, err, "the greeting never came")
	assert.True(t, isTimeout(err), "want a timeout, got %v", err)
	assert.Contains(t, explain(err), "i/o timeout: our turn did not come in time; raise -timeout (see docs/errors.md#timeout)")
	assert.Regexp(t, connectedLine, strings.TrimSuffix(c.out.String(), "\n"), "connected, and nothing else")
}

func TestServerThatStopsBeforeOurTurnResetsUs(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("what happens to the backlog when a listener closes differs by system; checked on Linux")
	}
	ln := listen(t)
	c := startClient(t, ln.Addr().String(), wait)
	require.Regexp(t, connectedLine, c.out.next(t))

	// The server stops before accepting us: the kernel resets every
	// connection still waiting in the backlog.
	require.NoError(t, ln.Close())
	err := c.wait(t)
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.ECONNRESET), "want connection reset, got %v", err)
	assert.Contains(t, explain(err), "connection reset by peer")
}

func TestReportsConnectionRefused(t *testing.T) {
	ln := listen(t)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // now nothing listens there

	c := startClient(t, addr, wait)
	err := c.wait(t)
	require.Error(t, err)
	refused := is(err, syscall.ECONNREFUSED)
	assert.True(t, refused, "want connection refused, got %v", err)
}

func TestStopWhileWaitingIsNotAnError(t *testing.T) {
	ln := listen(t)
	c := startClient(t, ln.Addr().String(), wait)
	require.Regexp(t, connectedLine, c.out.next(t))
	c.out.silentFor(t, quiet)

	c.stop() // what Ctrl+C does
	require.NoError(t, c.wait(t))
	assert.Regexp(t, `^stopped waiting after \S+$`, c.out.next(t))
}

// TestReadmeTranscript replays the README's session: the client waits
// while another client is served, and is greeted when its turn comes.
func TestReadmeTranscript(t *testing.T) {
	ln := listen(t)
	c := startClient(t, ln.Addr().String(), wait)
	c.out.next(t)
	c.out.silentFor(t, quiet)
	conn := accept(t, ln)
	_, err := io.WriteString(conn, greeting)
	require.NoError(t, err)
	require.NoError(t, c.wait(t))
	assertTranscript(t, "client", c.out.String())
}

// ---- helpers ----

func listen(t *testing.T) *net.TCPListener {
	t.Helper()
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

func accept(t *testing.T, ln *net.TCPListener) net.Conn {
	t.Helper()
	require.NoError(t, ln.SetDeadline(time.Now().Add(wait)))
	conn, err := ln.Accept()
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn
}

type client struct {
	out  *lines
	stop context.CancelFunc
	done chan error
}

// startClient runs the program against addr with -timeout timeout.
func startClient(t *testing.T, addr string, timeout time.Duration) *client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &client{out: newLines(), stop: cancel, done: make(chan error, 1)}
	args := []string{"-addr", addr, "-timeout", timeout.String()}
	go func() { c.done <- run(ctx, args, nil, c.out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-c.done:
		case <-time.After(wait):
			t.Error("client did not stop after cancel")
		}
	})
	return c
}

// wait returns the program's result, failing the test if it runs on.
func (c *client) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err // let Cleanup see it too
		return err
	case <-time.After(wait):
		t.Fatal("client did not return")
		return nil
	}
}

// lines is an io.Writer that hands each complete line to a channel, so
// a test can wait for the next line instead of sleeping.
type lines struct {
	mu   sync.Mutex
	all  strings.Builder
	part string
	ch   chan string
}

func newLines() *lines { return &lines{ch: make(chan string, 100)} }

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
		l.ch <- line
		l.part = rest
	}
	return len(p), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

func (l *lines) next(t *testing.T) string {
	t.Helper()
	select {
	case line := <-l.ch:
		return line
	case <-time.After(wait):
		t.Fatalf("no line printed within %v; so far:\n%s", wait, l.String())
		return ""
	}
}

// silentFor checks that no line is printed for d.
func (l *lines) silentFor(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case line := <-l.ch:
		t.Fatalf("want nothing printed yet, got %q", line)
	case <-time.After(d):
	}
}

// What varies from run to run: ports and durations.
var (
	ports     = regexp.MustCompile(`(127\.0\.0\.1|\[::1\]):\d+`)
	durations = regexp.MustCompile(`after [0-9.]+[µnm]?s\b`)
)

// assertTranscript compares got with the README block marked
// <!-- transcript: name -->, ignoring "$ " lines, ports and durations.
func assertTranscript(t *testing.T, name, got string) {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	marker := "<!-- transcript: " + name + " -->"
	_, after, ok := strings.Cut(string(readme), marker)
	require.True(t, ok, "README.md has no %s", marker)
	_, block, ok := strings.Cut(after, "```console\n")
	require.True(t, ok, "no ```console block after %s", marker)
	block, _, ok = strings.Cut(block, "```")
	require.True(t, ok, "unterminated block after %s", marker)
	normal := func(s string) string {
		return durations.ReplaceAllString(ports.ReplaceAllString(s, "$1:PORT"), "after D")
	}
	var want []string
	for _, line := range strings.Split(strings.TrimSuffix(block, "\n"), "\n") {
		if !strings.HasPrefix(line, "$ ") {
			want = append(want, normal(line))
		}
	}
	have := strings.Split(normal(strings.TrimSuffix(got, "\n")), "\n")
	assert.Equal(t, want, have, "README transcript %q differs from the program's output", name)
}
