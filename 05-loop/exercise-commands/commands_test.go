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
	"strconv"
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

func TestTimeAnswersTheTimeNowInUTC(t *testing.T) {
	srv := startServer(t)
	c := srv.connect(t)
	before := time.Now().Truncate(time.Second)
	reply := c.ask(t, "time\n")
	after := time.Now()

	got, err := time.Parse(time.RFC3339, strings.TrimSuffix(reply, "\n"))
	require.NoError(t, err, "want a time like 2025-06-01T12:00:00Z, got %q", reply)
	assert.True(t, strings.HasSuffix(reply, "Z\n"), "UTC is written with a Z: %q", reply)
	assert.False(t, got.Before(before) || got.After(after), "%v is not between %v and %v", got, before, after)
}

func TestEchoAnswersTheRestOfTheLine(t *testing.T) {
	srv := startServer(t)
	c := srv.connect(t)
	assert.Equal(t, "hello, world\n", c.ask(t, "echo hello, world\n"))
	assert.Equal(t, "  two  spaces \n", c.ask(t, "echo   two  spaces \n"), "spaces after the first one are the text")
	assert.Equal(t, "\n", c.ask(t, "echo\n"), "echo with no text answers an empty line")
}

func TestUnknownCommandIsNamedAndTheConversationGoesOn(t *testing.T) {
	srv := startServer(t)
	c := srv.connect(t)
	assert.Equal(t, `unknown command "frobnicate"`+"\n", c.ask(t, "frobnicate\n"))
	assert.Equal(t, `unknown command "TIME"`+"\n", c.ask(t, "TIME\n"), "commands are lower case")
	assert.Equal(t, `unknown command "echoes x"`+"\n", c.ask(t, "echoes x\n"), "echo is a whole word")
	// Garbage comes back quoted: no raw control bytes reach a terminal.
	// (Compared quoted too, so that a failing test prints none either:
	// \x1b[2J would clear yours.)
	garbage := c.ask(t, "\x00\xff\x1b[2J\n")
	assert.Equal(t, strconv.Quote(`unknown command "\x00\xff\x1b[2J"`+"\n"), strconv.Quote(garbage))
	assert.Equal(t, "still here\n", c.ask(t, "echo still here\n"))
}

func TestTwoCommandsInOneWriteGetTwoAnswers(t *testing.T) {
	srv := startServer(t)
	c := srv.connect(t)
	// One write, one segment, very likely one Read on the server: the
	// server must still find two lines in it.
	c.send(t, "echo one\necho two\n")
	assert.Equal(t, "one\n", c.line(t))
	assert.Equal(t, "two\n", c.line(t))
}

func TestCommandSplitAcrossWritesIsAnsweredOnceWhole(t *testing.T) {
	srv := startServer(t)
	c := srv.connect(t)
	c.send(t, "ec")
	// Nothing may come back for half a line. A short read deadline is
	// how a test says "nothing arrives": on loopback an answer would
	// come within microseconds, and 100ms lets the server read "ec".
	require.NoError(t, c.conn.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
	got, err := c.r.ReadString('\n')
	assert.True(t, isTimeout(err), "want no answer to half a line, got %q, %v", got, err)
	require.Empty(t, got)

	require.NoError(t, c.conn.SetReadDeadline(time.Now().Add(wait)))
	assert.Equal(t, "hi\n", c.ask(t, "ho hi\n"), `"ec" and "ho hi" are one line`)
}

func TestCarriageReturnFromTelnetIsNotPartOfTheCommand(t *testing.T) {
	srv := startServer(t)
	c := srv.connect(t)
	assert.Equal(t, "hi\n", c.ask(t, "echo hi\r\n"))
	assert.Equal(t, "bye\n", c.ask(t, "quit\r\n"))
}

func TestBlankLinesGetNoAnswer(t *testing.T) {
	srv := startServer(t)
	c := srv.connect(t)
	// The first answer is the one to echo: the blank lines before it,
	// one of them telnet's, got none.
	assert.Equal(t, "x\n", c.ask(t, "\n\r\necho x\n"))
}

func TestQuitSaysByeAndTheNextClientIsServed(t *testing.T) {
	srv := startServer(t)
	c := srv.connect(t)
	require.Equal(t, "bye\n", c.ask(t, "quit\n"))
	rest, err := io.ReadAll(c.r)
	require.NoError(t, err, "after bye the server closes with FIN, not a reset")
	assert.Empty(t, rest)
	c.leave()

	srv.connect(t) // greeted: the server went back to Accept
	assert.Contains(t, srv.out.String(), "client "+c.name+" quit\n")
}

func TestLineOf1024BytesIsAnsweredButOneMoreByteIsRefused(t *testing.T) {
	srv := startServer(t)
	c := srv.connect(t)
	text := strings.Repeat("x", maxLine-len("echo \n"))
	require.Equal(t, text+"\n", c.ask(t, "echo "+text+"\n"), "1024 bytes with the newline is allowed")

	c.send(t, "echo x"+text+"\n")
	require.Equal(t, "error: line longer than 1024 bytes, closing\n", c.line(t),
		"1025 bytes with the newline is one byte too many")
	rest, err := io.ReadAll(c.r)
	require.NoError(t, err, "the refusal ends with a clean close, not a reset")
	assert.Empty(t, rest)
	c.leave()

	srv.connect(t) // greeted: one client's long line does not stop the server
	assert.Contains(t, srv.out.String(), "client "+c.name+" sent a line longer than 1024 bytes, closed\n")
}

func TestEndlessLineIsCutOffAtTheLimit(t *testing.T) {
	srv := startServer(t)
	c := srv.connect(t)
	// A megabyte and no newline. The server reads 1024 bytes of it,
	// refuses, and discards the rest while it closes.
	go c.conn.Write([]byte(strings.Repeat("x", 1_000_000)))
	refusal := "error: line longer than 1024 bytes, closing\n"
	got := make([]byte, len(refusal))
	_, err := io.ReadFull(c.r, got)
	require.NoError(t, err)
	require.Equal(t, refusal, string(got))
	rest, err := io.ReadAll(c.r)
	require.NoError(t, err, "the refusal ends with a clean close, not a reset")
	assert.Empty(t, rest)
}

func TestSilentClientIsToldAndClosedAfterIdleTimeout(t *testing.T) {
	srv := startServer(t, "-idle-timeout", "100ms")
	c := srv.connect(t)
	rest, err := io.ReadAll(c.r)
	require.NoError(t, err)
	assert.Equal(t, "bye: idle for 100ms, closing\n", string(rest))
	c.leave()
	srv.connect(t)
}

func TestStopWhileServingSaysGoodbye(t *testing.T) {
	srv := startServer(t)
	c := srv.connect(t)
	srv.stop() // what Ctrl+C does
	rest, err := io.ReadAll(c.r)
	require.NoError(t, err)
	assert.Equal(t, "bye: server shutting down\n", string(rest))
	c.leave()
	assert.NoError(t, srv.wait(t), "stopping is not an error")
}

// TestReadmeTranscript replays the README's session with the real nc:
// one client that quits, one that sends a line too long.
func TestReadmeTranscript(t *testing.T) {
	nc, err := exec.LookPath("nc")
	if err != nil {
		t.Skip("nc is not installed (on Debian: apt-get install netcat-openbsd)")
	}
	srv := startServer(t)
	host, port, err := net.SplitHostPort(srv.addr)
	require.NoError(t, err)

	for _, session := range []struct{ name, input string }{
		{"nc", "echo hello, world\ntime\nTIME\nquit\n"},
		{"long", strings.Repeat("x", 2000)},
	} {
		// -N: close our side when the input ends, as the README's
		// command does; the server's close ends nc.
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		cmd := exec.CommandContext(ctx, nc, "-N", host, port)
		cmd.Stdin = strings.NewReader(session.input)
		got, err := cmd.Output()
		cancel()
		require.NoError(t, err, "nc should end when the server closes; got %q", got)
		assertTranscript(t, session.name, string(got))
	}
	srv.stop()
	require.NoError(t, srv.wait(t))
	assertTranscript(t, "server", srv.out.String())
}

// ---- helpers ----

type server struct {
	addr string
	out  *lines
	stop context.CancelFunc
	done chan error
}

// startServer runs the program on port 0 with args and waits for the
// address it listens on.
func startServer(t *testing.T, args ...string) *server {
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

type client struct {
	conn net.Conn
	r    *bufio.Reader
	name string // the client's address, as the server sees it
}

// connect dials the server and waits for the greeting, which comes
// when the server has finished with every earlier client.
func (s *server) connect(t *testing.T) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	c := &client{conn: conn, r: bufio.NewReader(conn), name: conn.LocalAddr().String()}
	require.Equal(t, greeting, c.line(t), "want the greeting")
	return c
}

func (c *client) send(t *testing.T, msg string) {
	t.Helper()
	_, err := io.WriteString(c.conn, msg)
	require.NoError(t, err)
}

func (c *client) line(t *testing.T) string {
	t.Helper()
	line, err := c.r.ReadString('\n')
	require.NoError(t, err, "want a line, got %q", line)
	return line
}

// ask sends msg and returns the line that comes back.
func (c *client) ask(t *testing.T, msg string) string {
	t.Helper()
	c.send(t, msg)
	return c.line(t)
}

func (c *client) leave() { c.conn.Close() }

// lines is an io.Writer that hands each complete line to a channel, so
// a test can wait for the next line instead of sleeping.
type lines struct {
	mu   sync.Mutex
	all  strings.Builder
	part string
	ch   chan string
}

func newLines() *lines { return &lines{ch: make(chan string, 1000)} }

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

// What varies from run to run: ports, and the answer to time.
var (
	ports = regexp.MustCompile(`(127\.0\.0\.1|\[::1\]):\d+`)
	times = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
)

// assertTranscript compares got with the README block marked
// <!-- transcript: name -->, ignoring "$ " lines, port numbers and
// times.
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
	normal := func(line string) string {
		return times.ReplaceAllString(ports.ReplaceAllString(line, "$1:PORT"), "TIME")
	}
	var want, have []string
	for _, line := range strings.Split(strings.TrimSuffix(block, "\n"), "\n") {
		if !strings.HasPrefix(line, "$ ") {
			want = append(want, normal(line))
		}
	}
	for _, line := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		have = append(have, normal(line))
	}
	assert.Equal(t, want, have, "README transcript %q differs from the program's output", name)
}
