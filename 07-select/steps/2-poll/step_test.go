//go:build linux || darwin

package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Step 2's tests run its serve function in this process: it waits in
// poll, so a server left running after a test costs nothing.

func TestPollLoopServesManyClientsAtOnce(t *testing.T) {
	addr := start(t)
	first, second := connect(t, addr), connect(t, addr)
	second.echo(t, "the second one first\n")
	first.echo(t, "then the first\n")
}

func TestPollLoopSleepsWhileNobodyIsConnected(t *testing.T) {
	// The fix for step 1: the loop sleeps in the kernel until a socket
	// is ready. This process uses next to no CPU while the server idles.
	// The window is the measurement itself, not a wait for an event.
	const window = 300 * time.Millisecond
	start(t)
	before := cpuTime(t)
	<-time.After(window)
	used := cpuTime(t) - before
	t.Logf("CPU used in %v with nobody connected: %v", window, used)
	assert.Less(t, used, window/10, "an idle poll loop should use next to no CPU")
}

func TestRepliesTheKernelCannotTakeAtOnceAreLost(t *testing.T) {
	// The pitfall the next step fixes. A write on a non-blocking socket
	// takes what fits in the socket's send buffer, and this loop throws
	// the rest away. A client that sends 32 MB before it reads (its own
	// receive buffer is small) gets far less back.
	addr := start(t)
	c := connect(t, addr)
	require.NoError(t, c.conn.(*net.TCPConn).SetReadBuffer(32<<10))
	sent := 32 << 20
	_, err := c.conn.Write(bytes.Repeat([]byte("x"), sent))
	require.NoError(t, err)
	require.NoError(t, c.conn.(*net.TCPConn).CloseWrite())
	got := c.payloadUntilEOF(t)
	t.Logf("sent %d bytes, got %d back", sent, got)
	assert.Less(t, got, sent/2, "most of the replies should be lost")
}

// ---- the machinery ----

// wait bounds every blocking step, so that a broken step fails a test
// instead of hanging it.
const wait = 10 * time.Second

// start runs the step's server on a free port, logging into a buffer,
// and returns its address.
func start(t *testing.T) string {
	t.Helper()
	lfd, err := listen("127.0.0.1:0")
	require.NoError(t, err)
	go serve(lfd, &syncBuffer{})
	return localAddr(lfd)
}

// syncBuffer is a log that the server goroutine and a test may share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// testClient is a connection whose greeting has been read.
type testClient struct {
	conn net.Conn
	r    *bufio.Reader
}

func connect(t *testing.T, addr string) *testClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	c := &testClient{conn: conn, r: bufio.NewReader(conn)}
	line, err := c.r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, greeting, line)
	return c
}

// echo sends msg and reads its reply, "OK..." and msg.
func (c *testClient) echo(t *testing.T, msg string) {
	t.Helper()
	_, err := c.conn.Write([]byte(msg))
	require.NoError(t, err)
	reply := make([]byte, len("OK...")+len(msg))
	_, err = io.ReadFull(c.r, reply)
	require.NoError(t, err)
	assert.Equal(t, "OK..."+msg, string(reply))
}

// payloadUntilEOF reads until the server closes, and counts the x's:
// the payload the tests send, without the "OK..." markers.
func (c *testClient) payloadUntilEOF(t *testing.T) int {
	t.Helper()
	buf := make([]byte, 64<<10)
	count := 0
	for {
		n, err := c.r.Read(buf)
		count += bytes.Count(buf[:n], []byte("x"))
		if err == io.EOF {
			return count
		}
		require.NoError(t, err)
	}
}

// cpuTime is the user plus system CPU time this process has used.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru unix.Rusage
	require.NoError(t, unix.Getrusage(unix.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
