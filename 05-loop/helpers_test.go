package main

// The machinery behind main_test.go: a server run in this process, a
// test client, a recorder for what the server prints, and the README's
// transcripts.

import (
	"bufio"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"os"
	"os/exec"
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

// wait bounds every blocking step of a test, so a broken server fails the
// test instead of hanging it.
const wait = 5 * time.Second

// quiet is how long a test listens to make sure that nothing arrives.
// Silence cannot be proven, only observed for a while; on loopback a
// greeting that was going to come would come within microseconds.
const quiet = 100 * time.Millisecond

// resetMidStream is one misbehaving client: it waits for its greeting,
// sends a message and aborts the connection with RST.
func resetMidStream(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Everyone waits for the 199 before it: a generous deadline.
	if err := conn.SetDeadline(time.Now().Add(4 * wait)); err != nil {
		return err
	}
	if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if _, err := conn.Write([]byte("half a sent")); err != nil {
		return err
	}
	// Linger 0 makes Close send RST instead of FIN.
	if err := conn.(*net.TCPConn).SetLinger(0); err != nil {
		return err
	}
	return conn.Close()
}

// programGoroutines returns the stacks of all goroutines that are in a
// function from the program's own files (not its tests).
func programGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, m := range programFrame.FindAllStringSubmatch(g, -1) {
			if !strings.HasSuffix(m[1], "_test") {
				found = append(found, g)
				break
			}
		}
	}
	return strings.Join(found, "\n\n")
}

// programFrame matches a stack frame in one of the program's files, such
// as 05-loop/main.go:123, and not in a test file.
var programFrame = regexp.MustCompile(`05-loop/([a-z_]+)\.go:\d`)

// server is the program running in this test process, as `go run` would
// run it, with its output captured line by line.
type server struct {
	addr string
	out  *lines
	stop context.CancelFunc
	done chan error
}

// startServer runs the program on a free port with args and waits for
// it to print the address it listens on.
func startServer(t testing.TB, args ...string) *server {
	t.Helper()
	return startServerOn(t, func(l *lines) io.Writer { return l }, args...)
}

// startServerOn is startServer with stdout made by stdout from the
// recorder of its lines, so that a test can put its own writer between.
func startServerOn(t testing.TB, stdout func(*lines) io.Writer, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &server{out: newLines(), stop: cancel, done: make(chan error, 1)}
	out := stdout(srv.out)
	args = append([]string{"-addr", "127.0.0.1:0"}, args...)
	go func() { srv.done <- run(ctx, args, nil, out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-srv.done:
			assert.NoError(t, err, "run should return nil after Ctrl+C")
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

// peer is a test client: a connection with a deadline and a buffered
// reader, and the steps a test takes with it.
type peer struct {
	t    testing.TB
	conn *net.TCPConn
	r    *bufio.Reader
}

func connect(t testing.TB, addr string) *peer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return &peer{t: t, conn: conn.(*net.TCPConn), r: bufio.NewReader(conn)}
}

// greeted reads the greeting line.
func (p *peer) greeted() {
	p.t.Helper()
	line, err := p.r.ReadString('\n')
	require.NoError(p.t, err, "no greeting")
	require.Equal(p.t, greeting, line)
}

// greetedWithin reads the greeting if it comes within d.
func (p *peer) greetedWithin(d time.Duration) bool {
	p.t.Helper()
	require.NoError(p.t, p.conn.SetReadDeadline(time.Now().Add(d)))
	defer p.conn.SetReadDeadline(time.Now().Add(wait))
	if _, err := p.r.Peek(1); isTimeout(err) {
		return false
	}
	p.greeted()
	return true
}

// hearsNothing checks that nothing arrives for a while.
func (p *peer) hearsNothing() {
	p.t.Helper()
	require.NoError(p.t, p.conn.SetReadDeadline(time.Now().Add(quiet)))
	defer p.conn.SetReadDeadline(time.Now().Add(wait))
	b, err := p.r.Peek(1)
	require.True(p.t, isTimeout(err), "expected silence, got %q, %v", b, err)
}

func (p *peer) write(msg string) {
	p.t.Helper()
	_, err := io.WriteString(p.conn, msg)
	require.NoError(p.t, err)
}

// ask sends msg and reads until all of it has come back, however the
// server's reads cut it into chunks. It returns the answer with its
// "OK..." markers.
func (p *peer) ask(msg string) string {
	p.t.Helper()
	p.write(msg)
	got := p.readAtLeast(len(msg))
	assert.Equal(p.t, msg, strip(got))
	return got
}

// readAtLeast reads answers until they hold n bytes besides the markers.
func (p *peer) readAtLeast(n int) string {
	p.t.Helper()
	var got []byte
	buf := make([]byte, 4096)
	for len(strip(string(got))) < n {
		k, err := p.r.Read(buf)
		require.NoError(p.t, err, "answer so far: %q", got)
		got = append(got, buf[:k]...)
	}
	return string(got)
}

// rest reads until the server closes, which must be a clean end (FIN).
func (p *peer) rest() string {
	p.t.Helper()
	b, err := io.ReadAll(p.r)
	require.NoError(p.t, err, "expected a clean end of stream, not a reset")
	return string(b)
}

// leave closes the connection, as a client that is done would.
func (p *peer) leave() {
	p.t.Helper()
	require.NoError(p.t, p.conn.Close())
}

// reset aborts the connection: linger 0 makes Close send RST.
func (p *peer) reset() {
	p.t.Helper()
	require.NoError(p.t, p.conn.SetLinger(0))
	require.NoError(p.t, p.conn.Close())
}

// strip removes the "OK..." markers, leaving what was sent.
func strip(answer string) string { return strings.ReplaceAll(answer, "OK...", "") }

func lastWord(line string) string { return line[strings.LastIndex(line, " ")+1:] }

// lines records what the program prints, line by line, for tests to
// wait on. Write never blocks the program and never drops a line: it
// appends under a mutex and wakes waiters through a notify channel of
// capacity 1 (a send that would block is skipped: a wake-up is already
// pending). Waiters re-scan what has been printed, with a deadline.
type lines struct {
	mu     sync.Mutex
	all    []string // the complete lines so far, without their newlines
	part   string   // the start of a line still being printed
	read   int      // how many lines next has returned
	notify chan struct{}
}

func newLines() *lines { return &lines{notify: make(chan struct{}, 1)} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.part += string(p)
	for {
		line, rest, ok := strings.Cut(l.part, "\n")
		if !ok {
			break
		}
		l.all = append(l.all, line)
		l.part = rest
	}
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
	return len(p), nil
}

// String is everything printed so far.
func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, line := range l.all {
		b.WriteString(line + "\n")
	}
	b.WriteString(l.part)
	return b.String()
}

// waitFor waits until the output so far satisfies done, and returns it.
func (l *lines) waitFor(t testing.TB, what string, done func(out string) bool) string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		out := l.String()
		if done(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; so far:\n%s", wait, what, out)
			return ""
		}
		// Another waiter may have taken the wake-up: re-scan at least
		// every 10 ms anyway.
		select {
		case <-l.notify:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// next returns the first line that next has not returned yet, waiting
// for it if need be.
func (l *lines) next(t testing.TB) string {
	t.Helper()
	var line string
	l.waitFor(t, "the next line", func(string) bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.read < len(l.all) {
			line = l.all[l.read]
			l.read++
			return true
		}
		return false
	})
	return line
}

// waitForLine waits until line has been printed, and returns the output.
func (l *lines) waitForLine(t testing.TB, line string) string {
	t.Helper()
	return l.waitFor(t, line, func(out string) bool {
		return strings.HasPrefix(out, line+"\n") || strings.Contains(out, "\n"+line+"\n")
	})
}

// stuckStdout stands for a pipe that nobody reads: once held, each Write
// blocks until release, and then goes on to the recorder.
type stuckStdout struct {
	to       *lines
	mu       sync.Mutex
	held     bool
	released chan struct{}
	once     sync.Once
}

func (s *stuckStdout) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = true
}

func (s *stuckStdout) release() { s.once.Do(func() { close(s.released) }) }

func (s *stuckStdout) Write(p []byte) (int, error) {
	s.mu.Lock()
	held := s.held
	s.mu.Unlock()
	if held {
		<-s.released
	}
	return s.to.Write(p)
}

// linesAbout returns the log lines that mention who, once the server has
// logged how that client's conversation ended.
func (l *lines) linesAbout(t testing.TB, who string) []string {
	t.Helper()
	var about []string
	l.waitFor(t, "the end of "+who, func(out string) bool {
		about = nil
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, " "+who+" ") {
				about = append(about, line)
			}
		}
		return len(about) > 1
	})
	return about
}

func runWithTimeout(t *testing.T, args []string, stdin io.Reader, stdout io.Writer) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return run(ctx, args, stdin, stdout, io.Discard)
}

// client is the program run as -client in this test process, with its
// stdout and stderr recorded.
type client struct {
	stdout, stderr *lines
	stop           context.CancelFunc // what Ctrl+C does
	done           chan error
}

// startClient runs the program with -client and args, reading stdin.
func startClient(t *testing.T, args []string, stdin io.Reader) *client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &client{stdout: newLines(), stderr: newLines(), stop: cancel, done: make(chan error, 1)}
	t.Cleanup(cancel)
	go func() { c.done <- run(ctx, append([]string{"-client"}, args...), stdin, c.stdout, c.stderr) }()
	return c
}

// wait returns what run returned, failing the test if it runs on.
func (c *client) wait(t *testing.T) error {
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

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	return port
}

func lookTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (on Debian: apt-get install %s); .ci/run installs it", name, map[string]string{"nc": "netcat-openbsd", "telnet": "telnet"}[name])
	}
	return path
}

var ports = regexp.MustCompile(`(127\.0\.0\.1|\[::1\]|localhost):\d+`)

// assertTranscript compares got with the README block marked
// <!-- transcript: name -->, ignoring the "$ " command lines and the port
// numbers, which change from run to run.
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

// settledProgramGoroutines waits up to a few seconds for the number of
// goroutines in main.go's functions to become want, and returns the last
// count. A goroutine can outlive its work by a moment: the one that
// context.AfterFunc starts to close an earlier test's listener may still
// be inside close(2) when that server has already returned. Waiting for
// the count to settle keeps such stragglers from being counted as leaks.
func settledProgramGoroutines(want int) int {
	deadline := time.Now().Add(wait)
	for {
		n := countProgramGoroutines()
		if n == want || time.Now().After(deadline) {
			return n
		}
		<-time.After(5 * time.Millisecond)
	}
}

// countProgramGoroutines counts the goroutines in a function from main.go.
func countProgramGoroutines() int {
	stacks := programGoroutines()
	if stacks == "" {
		return 0
	}
	return len(strings.Split(stacks, "\n\n"))
}

// failingListener fails its first Accepts with errno, the way a kernel
// reports it, then accepts for real. Tests use it for the errors a real
// test cannot cause: Go's own Accept retries ECONNABORTED on Linux, and
// filling the system's file table (ENFILE) would starve the machine. It
// notes when each Accept was called, so a test can measure the pauses.
type failingListener struct {
	net.Listener
	errno syscall.Errno
	mu    sync.Mutex
	fails int
	calls []time.Time
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.calls = append(l.calls, time.Now())
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(),
			Err: os.NewSyscallError("accept", l.errno)}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func (l *failingListener) times() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.calls...)
}

// keepAliveTimer reports whether the kernel keeps a keep-alive timer on
// the server's side of conn, a connection to 127.0.0.1. Linux lists each
// TCP socket in /proc/net/tcp: its local and remote address and port in
// hex, its state, its queues, then "tr:when", where tr is 2 while a
// keep-alive timer is set and 0 while no timer is. It is 1 while data
// sent waits for its ACK, as the greeting may still: wait for that.
func keepAliveTimer(t *testing.T, conn net.Conn) bool {
	t.Helper()
	server := fmt.Sprintf(":%04X", conn.RemoteAddr().(*net.TCPAddr).Port)
	client := fmt.Sprintf(":%04X", conn.LocalAddr().(*net.TCPAddr).Port)
	deadline := time.After(wait)
	for {
		table, err := os.ReadFile("/proc/net/tcp")
		require.NoError(t, err)
		for _, line := range strings.Split(string(table), "\n") {
			f := strings.Fields(line)
			if len(f) > 5 && strings.HasSuffix(f[1], server) && strings.HasSuffix(f[2], client) {
				if tr, _, _ := strings.Cut(f[5], ":"); tr != "01" {
					return tr == "02"
				}
			}
		}
		select {
		case <-deadline:
			t.Fatalf("the server's side of %v did not settle in /proc/net/tcp within %v", conn.LocalAddr(), wait)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// declarations returns the source of each top-level declaration in
// files, doc comment included, by name: "clientTurn.over" for a method.
func declarations(t testing.TB, files ...string) map[string]string {
	t.Helper()
	decls := map[string]string{}
	fset := token.NewFileSet()
	for _, name := range files {
		src, err := os.ReadFile(name)
		require.NoError(t, err)
		file, err := parser.ParseFile(fset, name, src, parser.ParseComments)
		require.NoError(t, err)
		text := func(node ast.Node, doc *ast.CommentGroup) string {
			from := node.Pos()
			if doc != nil {
				from = doc.Pos()
			}
			return string(src[fset.Position(from).Offset:fset.Position(node.End()).Offset])
		}
		for _, d := range file.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				key := d.Name.Name
				if d.Recv != nil {
					recv := d.Recv.List[0].Type
					if star, ok := recv.(*ast.StarExpr); ok {
						recv = star.X
					}
					key = recv.(*ast.Ident).Name + "." + key
				}
				decls[key] = text(d, d.Doc)
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch spec := spec.(type) {
					case *ast.TypeSpec:
						decls[spec.Name.Name] = text(d, d.Doc)
					case *ast.ValueSpec:
						decls[spec.Names[0].Name] = text(d, d.Doc)
					}
				}
			}
		}
	}
	return decls
}
