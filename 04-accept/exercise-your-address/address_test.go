//go:build exercise || solution

package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// wait bounds every blocking step of a test, so a broken server fails
// the test instead of hanging it.
const wait = 5 * time.Second

func TestClientIsToldItsOwnAddressAndPort(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0")
	conn := dial(t, srv.addr)

	// What the server calls RemoteAddr is what the client calls
	// LocalAddr: the same end of the same connection.
	assert.Equal(t, "you are "+conn.LocalAddr().String()+"\n", readLine(t, conn))
}

func TestServerNamesItsEndWhichHasTheListenersPort(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0")
	conn := dial(t, srv.addr)
	readLine(t, conn)

	// The accepted connection's local end has the listener's port:
	// Accept makes no new port, only a new socket.
	assert.Equal(t, "I am "+srv.addr+"\n", readLine(t, conn))
	assert.Equal(t, conn.RemoteAddr().String(), srv.addr)
}

func TestGreetingEndsWithACleanClose(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0")
	conn := dial(t, srv.addr)

	all, err := io.ReadAll(conn)
	require.NoError(t, err, "the server closes with FIN, not a reset")
	assert.Equal(t, 2, strings.Count(string(all), "\n"), "exactly two lines: %q", all)
	conn.Close() // a polite client closes when it reads the end
	require.NoError(t, srv.wait(t))
}

func TestIPv6ClientIsToldItsAddressInBrackets(t *testing.T) {
	if !nettest.SupportsIPv6() {
		t.Skip("this system has no IPv6 loopback")
	}
	srv := startServer(t, "[::1]:0")
	conn := dial(t, srv.addr)
	// "[::1]:52814": the brackets keep the port apart from the colons
	// of the IPv6 address.
	line := readLine(t, conn)
	assert.Regexp(t, `^you are \[::1\]:\d+\n$`, line)
	assert.Equal(t, "you are "+conn.LocalAddr().String()+"\n", line)
}

// TestReadmeTranscript runs the README's session with the real nc.
func TestReadmeTranscript(t *testing.T) {
	nc, err := exec.LookPath("nc")
	if err != nil {
		t.Skip("nc is not installed (on Debian: apt-get install netcat-openbsd)")
	}
	srv := startServer(t, "127.0.0.1:0")
	host, port, _ := net.SplitHostPort(srv.addr)

	// nc sends nothing and prints what arrives; the server's close
	// ends it.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, nc, host, port)
	cmd.Stdin = strings.NewReader("")
	got, err := cmd.Output()
	require.NoError(t, err)
	assertTranscript(t, "nc", string(got))
	require.Regexp(t, `^you are 127\.0\.0\.1:\d+\nI am `+regexp.QuoteMeta(srv.addr)+`\n$`, string(got))

	require.NoError(t, srv.wait(t))
	assertTranscript(t, "server", srv.out.String())
}

// ---- helpers ----

type server struct {
	addr string
	out  *lines
	done chan error
}

// startServer runs the program on addr and waits for the address it
// really listens on.
func startServer(t *testing.T, addr string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &server{out: newLines(), done: make(chan error, 1)}
	go func() { srv.done <- run(ctx, []string{"-addr", addr}, nil, srv.out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-srv.done:
		case <-time.After(wait):
			t.Error("server did not stop after cancel")
		}
	})
	first := srv.out.next(t)
	got, ok := strings.CutPrefix(first, "listening on ")
	require.True(t, ok, "first line should give the address, got %q", first)
	srv.addr = got
	return srv
}

// wait returns the program's result, failing the test if it runs on.
func (s *server) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // let Cleanup see it too
		return err
	case <-time.After(wait):
		t.Fatal("server did not return")
		return nil
	}
}

// conn pairs a connection with a reader of its lines.
type conn struct {
	net.Conn
	lines *bufio.Reader
}

func (c *conn) Read(p []byte) (int, error) { return c.lines.Read(p) }

func dial(t *testing.T, addr string) *conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, c.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { c.Close() })
	return &conn{Conn: c, lines: bufio.NewReader(c)}
}

func readLine(t *testing.T, c *conn) string {
	t.Helper()
	line, err := c.lines.ReadString('\n')
	require.NoError(t, err, "expected a line, got %q", line)
	return line
}

// lines is an io.Writer that keeps what the program prints, so a test
// can wait for the next line instead of sleeping. It never blocks the
// program and never drops a line: Write appends under a mutex and wakes
// a waiter through a channel that holds at most one wake-up, and the
// waiter looks again, with a deadline.
type lines struct {
	mu       sync.Mutex
	all      strings.Builder
	complete []string // every whole line so far
	part     string   // the start of a line still being written
	taken    int      // lines already returned by next
	notify   chan struct{}
}

func newLines() *lines { return &lines{notify: make(chan struct{}, 1)} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.all.Write(p)
	l.part += string(p)
	for {
		line, rest, ok := strings.Cut(l.part, "\n")
		if !ok {
			break
		}
		l.complete = append(l.complete, line)
		l.part = rest
	}
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default: // a wake-up is already waiting
	}
	return len(p), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// next returns the next whole line the program printed, waiting for it
// for at most wait.
func (l *lines) next(t *testing.T) string {
	t.Helper()
	deadline := time.After(wait)
	for {
		l.mu.Lock()
		if l.taken < len(l.complete) {
			line := l.complete[l.taken]
			l.taken++
			l.mu.Unlock()
			return line
		}
		l.mu.Unlock()
		select {
		case <-l.notify:
		case <-deadline:
			t.Fatalf("no line printed within %v; so far:\n%s", wait, l.String())
			return ""
		}
	}
}

var ports = regexp.MustCompile(`(127\.0\.0\.1|\[::1\]):\d+`)

// assertTranscript compares got with the README block marked
// <!-- transcript: name -->, ignoring "$ " lines and port numbers.
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
	var want []string
	for _, line := range strings.Split(strings.TrimSuffix(block, "\n"), "\n") {
		if !strings.HasPrefix(line, "$ ") {
			want = append(want, ports.ReplaceAllString(line, "$1:PORT"))
		}
	}
	have := strings.Split(ports.ReplaceAllString(strings.TrimSuffix(got, "\n"), "$1:PORT"), "\n")
	assert.Equal(t, want, have, "README transcript %q differs from the program's output", name)
}
