package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Step 1's tests run its acceptLoop in this process, on a listener whose
// connections count their Reads, so that they can watch the loop spin.

func TestNaiveLoopAnswersEachMessage(t *testing.T) {
	ln := listen(t)
	go acceptLoop(ln, newOutput())
	c := dial(t, ln)
	c.expect(greeting)
	c.send("hello\n")
	c.expect("OK...hello\n")
}

func TestNaiveLoopSpinsAfterTheClientLeaves(t *testing.T) {
	ln := listen(t)
	go acceptLoop(ln, newOutput())
	c := dial(t, ln)
	c.expect(greeting)
	conn := <-ln.accepted
	require.NoError(t, c.conn.Close())

	// The client has gone. A loop that noticed would read once more, get
	// io.EOF and stop. This one reads on, getting nothing, as fast as
	// the CPU allows: ten thousand reads take it a few milliseconds. (The
	// test's end stops it.)
	waitUntil(t, "10,000 reads after the client left", func() bool { return conn.reads.Load() >= 10_000 })
}

func TestReadmeBareProgramTranscript(t *testing.T) {
	ln := listen(t)
	out := newOutput()
	go acceptLoop(ln, out)
	c := dial(t, ln)
	c.expect(greeting)
	c.send("hello\n")
	c.expect("OK...hello\n")
	log := "listening on " + ln.Addr().String() + "\n" + out.waitFor(t, " connected\n")

	// The README's session, "$ " lines and port numbers aside.
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(readme), "<!-- transcript: step-1 -->\n```console\n")
	require.True(t, ok, "README.md has no step-1 transcript")
	block, _, _ := strings.Cut(after, "```")
	ports := regexp.MustCompile(`127\.0\.0\.1:\d+`)
	var want []string
	for _, line := range strings.Split(strings.TrimSuffix(block, "\n"), "\n") {
		if !strings.HasPrefix(line, "$ ") {
			want = append(want, line)
		}
	}
	assert.Equal(t, ports.ReplaceAllString(strings.Join(want, "\n"), "127.0.0.1:PORT"),
		ports.ReplaceAllString(strings.TrimSuffix(log, "\n"), "127.0.0.1:PORT"))
}

// ---- the machinery ----

// wait bounds every blocking step, so that a broken step fails a test
// instead of hanging it.
const wait = 5 * time.Second

// countingListener hands out connections that count their Reads, so that
// a test can see a loop spin. Once the test is over, a Read blocks for
// good: that is what stops a loop that spins.
type countingListener struct {
	net.Listener
	accepted chan *countingConn
	over     chan struct{}
}

func listen(t *testing.T) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := &countingListener{Listener: ln, accepted: make(chan *countingConn, 16), over: make(chan struct{})}
	t.Cleanup(func() {
		close(l.over)
		ln.Close()
	})
	return l
}

func (l *countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &countingConn{Conn: conn, over: l.over}
	select {
	case l.accepted <- c:
	default:
	}
	return c, nil
}

type countingConn struct {
	net.Conn
	reads atomic.Int64
	over  chan struct{}
}

func (c *countingConn) Read(p []byte) (int, error) {
	select {
	case <-c.over:
		select {} // the test is over: stop here for good
	default:
	}
	n, err := c.Conn.Read(p)
	c.reads.Add(1)
	return n, err
}

// client is a test client with a deadline on everything it does.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dial(t *testing.T, ln net.Listener) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", ln.Addr().String(), wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// expect reads one line and checks it.
func (c *client) expect(want string) {
	c.t.Helper()
	got, err := c.r.ReadString('\n')
	require.NoError(c.t, err, "waiting for %q", want)
	require.Equal(c.t, want, got)
}

func (c *client) send(msg string) {
	c.t.Helper()
	_, err := io.WriteString(c.conn, msg)
	require.NoError(c.t, err)
}

// output records what the server logs. Write never blocks the server:
// it appends under a mutex and wakes a waiter through a channel of
// capacity 1; waiters re-scan with a deadline.
type output struct {
	mu     sync.Mutex
	text   strings.Builder
	notify chan struct{}
}

func newOutput() *output { return &output{notify: make(chan struct{}, 1)} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	o.text.Write(p)
	o.mu.Unlock()
	select {
	case o.notify <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.text.String()
}

// waitFor waits until the log contains s, and returns the log.
func (o *output) waitFor(t *testing.T, s string) string {
	t.Helper()
	deadline := time.After(wait)
	for {
		if out := o.String(); strings.Contains(out, s) {
			return out
		}
		select {
		case <-o.notify:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("waited %v for %q in the log:\n%s", wait, s, o.String())
		}
	}
}

// waitUntil polls cond every millisecond until it holds, or fails.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", wait, what)
		}
		<-tick.C
	}
}
