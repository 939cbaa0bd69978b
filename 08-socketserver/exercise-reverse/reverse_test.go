//go:build exercise || solution

package main

import (
	"bufio"
	"bytes"
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
)

// wait bounds every blocking step of a test, so a broken server fails
// the test instead of hanging it.
const wait = 5 * time.Second

func TestReverseIsChosenWithTheHandlerFlag(t *testing.T) {
	srv := startProgram(t, "-handler", "reverse")
	c := dialLines(t, srv.addr)
	assert.Equal(t, "olleh", c.ask(t, "hello"))
}

func TestUpperIsStillTheDefault(t *testing.T) {
	srv := startProgram(t)
	c := dialLines(t, srv.addr)
	assert.Equal(t, "HELLO", c.ask(t, "hello"))
}

func TestUsageListsEveryHandler(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-handler", "nope"}, nil, io.Discard, &stderr)
	assert.ErrorIs(t, err, errUsage)
	assert.Contains(t, stderr.String(), "-handler must be one of reverse, upper;")
}

func TestReverseKeepsMultiByteCharactersWhole(t *testing.T) {
	c := dialLines(t, serveReverse(t))
	assert.Equal(t, "olléh", c.ask(t, "héllo"))
	assert.Equal(t, "語本日", c.ask(t, "日本語"))
	assert.Equal(t, "!👋 iH", c.ask(t, "Hi 👋!"))
}

func TestReverseKeepsInvalidBytesAsTheyAre(t *testing.T) {
	c := dialLines(t, serveReverse(t))
	assert.Equal(t, "b\xffa", c.ask(t, "a\xffb"))
}

func TestTelnetLineEndingIsNotPartOfTheLine(t *testing.T) {
	c := dialLines(t, serveReverse(t))
	assert.Equal(t, "cba", c.ask(t, "abc\r"), "the \\r of \\r\\n must not move to the front")
}

func TestEmptyLineGetsAnEmptyLine(t *testing.T) {
	c := dialLines(t, serveReverse(t))
	assert.Equal(t, "", c.ask(t, ""))
	assert.Equal(t, "x", c.ask(t, "x"))
}

func TestManyLinesInOneWriteGetOneReplyEach(t *testing.T) {
	c := dialLines(t, serveReverse(t))
	_, err := io.WriteString(c.conn, "one\ntwo\nthree\n")
	require.NoError(t, err)
	for _, want := range []string{"eno", "owt", "eerht"} {
		assert.Equal(t, want, c.next(t))
	}
}

func TestLineSentOneByteAtATimeIsAnsweredWhole(t *testing.T) {
	c := dialLines(t, serveReverse(t))
	// Go turns Nagle's algorithm off, so each one-byte Write leaves as
	// its own segment: the server's reads see the line in pieces.
	for _, b := range []byte("byte by byte\n") {
		_, err := c.conn.Write([]byte{b})
		require.NoError(t, err)
	}
	assert.Equal(t, "etyb yb etyb", c.next(t))
}

func TestTooLongLineGetsAnErrorReplyAndTheConnectionCloses(t *testing.T) {
	c := dialLines(t, serveReverse(t))
	_, err := c.conn.Write(bytes.Repeat([]byte("x"), 2*maxLine))
	require.NoError(t, err)
	assert.Equal(t, "error: line longer than 4096 bytes, closing", c.next(t))
	rest, err := io.ReadAll(c.replies)
	require.NoError(t, err, "the server should close with FIN")
	assert.Empty(t, rest)
}

func TestReadmeTranscript(t *testing.T) {
	srv := startProgram(t, "-handler", "reverse")
	c := dialLines(t, srv.addr)
	var session strings.Builder
	for _, line := range []string{"hello", "socket server", "héllo wörld"} {
		session.WriteString(c.ask(t, line) + "\n")
	}
	assertTranscript(t, "client", session.String())
}

func TestReadmeTranscriptWithNetcat(t *testing.T) {
	for _, tool := range []string{"sh", "nc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not on PATH: this test runs a shell pipeline through nc (on Debian: apt-get install netcat-openbsd; Windows has neither); .ci/run installs it", tool)
		}
	}
	srv := startProgram(t, "-handler", "reverse")
	host, port, _ := net.SplitHostPort(srv.addr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	// The README's pipeline: nc -N half-closes after its input, the
	// server answers the last line, sees the end and closes, nc exits.
	pipeline := `printf 'hello\nsocket server\nhéllo wörld\n' | nc -N ` + host + " " + port
	got, err := exec.CommandContext(ctx, "sh", "-c", pipeline).Output()
	if err != nil {
		t.Skipf("%s failed (%v): this nc may lack -N (macOS's does)", pipeline, err)
	}
	assertTranscript(t, "client", string(got))
}

// ---- helpers ----

// serveReverse serves reverse as main.go would, on a loopback port.
func serveReverse(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv := &Server{Handler: HandlerFunc(reverse), IdleTimeout: wait, Log: io.Discard}
		srv.Serve(ctx, ln)
	}()
	t.Cleanup(func() { cancel(); receive(t, done) })
	return ln.Addr().String()
}

type lineClient struct {
	conn    net.Conn
	replies *bufio.Reader
}

func dialLines(t *testing.T, addr string) *lineClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return &lineClient{conn: conn, replies: bufio.NewReader(conn)}
}

// ask sends one line and returns the reply without its "\n".
func (c *lineClient) ask(t *testing.T, line string) string {
	t.Helper()
	_, err := io.WriteString(c.conn, line+"\n")
	require.NoError(t, err)
	return c.next(t)
}

// next returns the next reply line without its "\n".
func (c *lineClient) next(t *testing.T) string {
	t.Helper()
	reply, err := c.replies.ReadString('\n')
	require.NoError(t, err, "so far: %q", reply)
	return strings.TrimSuffix(reply, "\n")
}

// program is run() serving in this test process.
type program struct {
	addr string
	out  *lines
}

func startProgram(t *testing.T, args ...string) *program {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &program{out: newLines()}
	done := make(chan error, 1)
	args = append([]string{"-addr", "127.0.0.1:0"}, args...)
	var stderr bytes.Buffer
	go func() { done <- run(ctx, args, nil, p.out, &stderr) }()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	first, ok := p.out.take()
	for !ok {
		select {
		case <-p.out.notify:
			first, ok = p.out.take()
		case err := <-done:
			cancel()
			t.Fatalf("the program stopped before it listened: %v\n%s", err, stderr.String())
		case <-deadline.C:
			cancel()
			t.Fatalf("the program printed nothing within %v", wait)
		}
	}
	t.Cleanup(func() {
		cancel()
		receive(t, done)
	})
	addr, ok := strings.CutPrefix(first, "listening on ")
	require.True(t, ok, "first line should give the address, got %q", first)
	p.addr = addr
	return p
}

// receive waits for one value from ch, failing the test if none comes.
func receive[T any](t *testing.T, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("nothing received within %v", wait)
		var zero T
		return zero
	}
}

// lines is an io.Writer that keeps every complete line the program
// prints, so a test can wait for a line instead of sleeping. It never
// blocks the program and never drops a line: each line goes to a slice
// under a mutex, and a notify channel of capacity 1 wakes whoever
// waits, who then looks again.
type lines struct {
	mu     sync.Mutex
	all    strings.Builder
	part   string
	got    []string
	read   int // lines already returned by take and next
	notify chan struct{}
}

func newLines() *lines { return &lines{notify: make(chan struct{}, 1)} }

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
	select {
	case l.notify <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// take returns the next line not returned yet, if there is one.
func (l *lines) take() (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.read == len(l.got) {
		return "", false
	}
	l.read++
	return l.got[l.read-1], true
}

// waitFor returns the first line printed, so far or within wait, that
// contains s.
func (l *lines) waitFor(t *testing.T, s string) string {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		for _, line := range l.got {
			if strings.Contains(line, s) {
				l.mu.Unlock()
				return line
			}
		}
		l.mu.Unlock()
		select {
		case <-l.notify:
		case <-deadline.C:
			t.Fatalf("no line containing %q within %v; so far:\n%s", s, wait, l.String())
			return ""
		}
	}
}

var ports = regexp.MustCompile(`(127\.0\.0\.1|\[::1\]):\d+`)

// assertTranscript compares got with the README block marked
// <!-- transcript: name -->, ignoring "$ " lines and ports.
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
		if !strings.HasPrefix(line, "$ ") && line != "^C" {
			want = append(want, ports.ReplaceAllString(line, "$1:PORT"))
		}
	}
	have := strings.Split(ports.ReplaceAllString(strings.TrimSuffix(got, "\n"), "$1:PORT"), "\n")
	assert.Equal(t, want, have, "README transcript %q differs from the program's output", name)
}
