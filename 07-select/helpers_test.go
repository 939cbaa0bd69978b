//go:build linux || darwin

// The machinery of the tests in main_test.go: a server run in this
// process, clients, a recorder of printed lines, and the README's
// transcripts.

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
	"golang.org/x/sys/unix"
)

// wait bounds every blocking step of a test, so a broken server fails the
// test instead of hanging it.
const wait = 5 * time.Second

const greetingLine = "welcome to 07-select: every message you send comes back after OK...\n"

// forEachPoller runs a behaviour test once per readiness back-end this
// platform has (epoll and poll on Linux, kqueue and poll on macOS), so
// every back-end keeps every promise.
func forEachPoller(t *testing.T, test func(t *testing.T, poller string)) {
	for _, name := range pollerNames() {
		t.Run(name, func(t *testing.T) { test(t, name) })
	}
}

// server is the program running in this test process, as `go run` would
// run it, with its output captured line by line.
type server struct {
	addr string
	out  *lines
	stop context.CancelFunc
	done chan error
}

// startServer runs the program on a free port with args and waits for it
// to print the address it listens on.
func startServer(t testing.TB, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &server{out: newLines(), stop: cancel, done: make(chan error, 1)}
	args = append([]string{"-addr", "127.0.0.1:0"}, args...)
	go func() { srv.done <- run(ctx, args, nil, srv.out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-srv.done:
		case <-time.After(wait):
			t.Error("server did not stop after cancel")
		}
	})
	first := srv.out.next(t)
	addr, ok := strings.CutPrefix(first, "listening on ")
	require.True(t, ok, "first line should give the address, got %q", first)
	srv.addr = addr
	return srv
}

// wait returns the program's result, failing the test if it runs on.
func (s *server) wait(t testing.TB) error {
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

// client is a connection whose greeting has been read.
type client struct {
	conn net.Conn
	r    *bufio.Reader
}

// connect dials the server and checks the greeting line.
func connect(t *testing.T, addr string) *client {
	t.Helper()
	conn := dial(t, addr)
	c := &client{conn: conn, r: bufio.NewReader(conn)}
	line, err := c.r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, greetingLine, line)
	return c
}

// connectFrom is connect from another loopback address, such as
// 127.0.0.2: a second client machine, as far as the server can tell.
func connectFrom(t *testing.T, ip, addr string) *client {
	t.Helper()
	d := net.Dialer{Timeout: wait, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil && runtime.GOOS == "darwin" {
		t.Skipf("cannot dial from %s (macOS has only 127.0.0.1 unless an alias is added): %v", ip, err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	c := &client{conn: conn, r: bufio.NewReader(conn)}
	line, err := c.r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, greetingLine, line)
	return c
}

// echo sends msg and reads until all of it has come back. The server
// answers each chunk it reads, so the reply may be cut into several
// "OK..." pieces; only the bytes after the markers are compared. It
// returns the raw reply.
func (c *client) echo(t *testing.T, msg string) string {
	t.Helper()
	require.NoError(t, c.conn.SetDeadline(time.Now().Add(wait)))
	_, err := c.conn.Write([]byte(msg))
	require.NoError(t, err)
	var raw []byte
	buf := make([]byte, 4096)
	for strings.ReplaceAll(string(raw), marker, "") != msg {
		n, err := c.r.Read(buf)
		require.NoError(t, err, "reading the echo of %q, got %q so far", msg, raw)
		raw = append(raw, buf[:n]...)
	}
	require.True(t, strings.HasPrefix(string(raw), marker), "reply should start with OK..., got %q", raw)
	return string(raw)
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn
}

func runWithTimeout(t *testing.T, args []string, stdin io.Reader, stdout io.Writer) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return run(ctx, args, stdin, stdout, io.Discard)
}

// clientRun is the program run as -client in this test process, with
// its stdout and stderr recorded.
type clientRun struct {
	stdout, stderr *lines
	stop           context.CancelFunc // what Ctrl+C does
	done           chan error
}

// startClient runs the program with -client and args, reading stdin.
func startClient(t *testing.T, args []string, stdin io.Reader) *clientRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &clientRun{stdout: newLines(), stderr: newLines(), stop: cancel, done: make(chan error, 1)}
	t.Cleanup(cancel)
	go func() { c.done <- run(ctx, append([]string{"-client"}, args...), stdin, c.stdout, c.stderr) }()
	return c
}

// wait returns what run returned, failing the test if it runs on.
func (c *clientRun) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c.done:
		return err
	case <-time.After(wait):
		t.Fatal("the client did not return")
		return nil
	}
}

// closedPort returns an address where nothing listens: a port that was
// just free and has been closed again.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// fakeAccept stands in for the kernel's accept: it fails with each of
// errs in turn, then accepts for real. It notes when each call came, so
// a test can measure the pauses between tries.
type fakeAccept struct {
	mu    sync.Mutex
	errs  []error
	calls []time.Time
}

// failAccept makes the server's accept fail with errs before it works.
// Call it before startServer: cleanups run last first, so the server
// has stopped before the real accept is put back.
func failAccept(t *testing.T, errs ...error) *fakeAccept {
	t.Helper()
	fake := &fakeAccept{errs: errs}
	acceptFunc = fake.accept
	t.Cleanup(func() { acceptFunc = acceptConn })
	return fake
}

func (f *fakeAccept) accept(lfd int) (int, unix.Sockaddr, error) {
	f.mu.Lock()
	f.calls = append(f.calls, time.Now())
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		f.mu.Unlock()
		return -1, nil, err
	}
	f.mu.Unlock()
	return acceptConn(lfd)
}

func (f *fakeAccept) times() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// lines records what the program prints, line by line, so a test can
// wait for a line instead of sleeping. Write never blocks and never drops
// a line: it appends under a mutex and wakes waiters through a channel
// of capacity 1, and waiters look again until their deadline.
type lines struct {
	mu     sync.Mutex
	all    strings.Builder
	done   []string // complete lines
	part   string
	seen   int // lines already returned by next or waitFor
	notify chan struct{}
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
		l.done = append(l.done, line)
		l.part = rest
	}
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default: // a wake-up is pending already
	}
	return len(p), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// await calls found with the lines not yet seen, again after every
// write, until it reports ok (and how many of those lines it used up),
// and fails the test if that does not happen within wait.
func (l *lines) await(t testing.TB, what string, found func(unseen []string) (used int, ok bool)) {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		if used, ok := found(l.done[l.seen:]); ok {
			l.seen += used
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		select {
		case <-l.notify:
		case <-deadline.C:
			t.Fatalf("no %s within %v; so far:\n%s", what, wait, l.String())
		}
	}
}

// next returns the next line not yet seen.
func (l *lines) next(t testing.TB) string {
	t.Helper()
	var line string
	l.await(t, "line printed", func(unseen []string) (int, bool) {
		if len(unseen) == 0 {
			return 0, false
		}
		line = unseen[0]
		return 1, true
	})
	return line
}

// waitFor skips lines until one contains part.
func (l *lines) waitFor(t testing.TB, part string) string {
	t.Helper()
	var line string
	l.await(t, fmt.Sprintf("line containing %q", part), func(unseen []string) (int, bool) {
		for i, s := range unseen {
			if strings.Contains(s, part) {
				line = s
				return i + 1, true
			}
		}
		return 0, false
	})
	return line
}

// waitForLines waits until at least n lines have been printed, and
// returns all the output.
func (l *lines) waitForLines(t testing.TB, n int) string {
	t.Helper()
	l.await(t, fmt.Sprintf("%d lines", n), func([]string) (int, bool) {
		return 0, len(l.done) >= n
	})
	return l.String()
}

// stuckWriter stands for a pipe nobody reads: it records each write,
// then holds it until unstick is called.
type stuckWriter struct {
	to      *lines
	release chan struct{}
	once    sync.Once
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	w.to.Write(p)
	<-w.release
	return len(p), nil
}

func (w *stuckWriter) unstick() { w.once.Do(func() { close(w.release) }) }

// lessonGoroutines lists the stacks of goroutines running the program's
// code (not the tests'). In a test binary, a stack names package main by
// its import path, ".../07-select", not by "main".
func lessonGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, fn := range []string{"07-select.run(", "07-select.serve(", "07-select.(*eventLoop)", "07-select.(*waker)", "07-select.loadgen(", "07-select.(*logQueue)"} {
			if strings.Contains(g, fn) {
				found = append(found, g)
				break
			}
		}
	}
	return found
}

// cpuTime is the user plus system CPU time this process has used.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru unix.Rusage
	require.NoError(t, unix.Getrusage(unix.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var summaryLine = regexp.MustCompile(`^conns=(\d+) messages=(\d+) requests=(\d+) seconds=\d+\.\d{3} rps=\d+ p50=\d+us p99=\d+us$`)

func lookTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (on Debian: apt-get install netcat-openbsd); .ci/run installs it", name)
	}
	return path
}

var ports = regexp.MustCompile(`(127\.0\.0\.1|\[::1\]|localhost):\d+`)

// readmeBlock returns the lines of the README block marked
// <!-- transcript: name -->, without the "$ " command lines.
func readmeBlock(t *testing.T, name string) []string {
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
			want = append(want, line)
		}
	}
	return want
}

// assertTranscript compares got with a README block, ignoring the port
// numbers, which change from run to run.
func assertTranscript(t *testing.T, name, got string) {
	t.Helper()
	want := readmeBlock(t, name)
	for i := range want {
		want[i] = ports.ReplaceAllString(want[i], "$1:PORT")
	}
	have := strings.Split(ports.ReplaceAllString(strings.TrimSuffix(got, "\n"), "$1:PORT"), "\n")
	assert.Equal(t, want, have, "README transcript %q differs from the program's output", name)
}
