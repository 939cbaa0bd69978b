//go:build linux || darwin

package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Step 3's tests run its serve function in this process: it waits in
// poll, so a server left running after a test costs nothing.

func TestEveryReplyArrivesHoweverLateTheClientReads(t *testing.T) {
	// The fix for step 2: what the kernel does not take at once waits in
	// the client's output buffer. The client sends 32 MB before it reads
	// (its own receive buffer is small), and gets every byte back.
	addr := start(t)
	c := connect(t, addr)
	require.NoError(t, c.conn.(*net.TCPConn).SetReadBuffer(32<<10))
	sent := 32 << 20
	_, err := c.conn.Write(bytes.Repeat([]byte("x"), sent))
	require.NoError(t, err)
	require.NoError(t, c.conn.(*net.TCPConn).CloseWrite())
	assert.Equal(t, sent, c.payloadUntilEOF(t), "every byte should come back")
}

func TestClientThatNeverReadsMakesTheServerHoldAllItSends(t *testing.T) {
	// The pitfall the next step fixes. The loop reads whatever a client
	// sends and keeps every reply it cannot send, so a client that sends
	// and never reads makes the server's memory grow with what it sends:
	// 32 MB go out without a single write blocking, and the heap grows
	// by most of that.
	addr := start(t)
	c := connect(t, addr)
	require.NoError(t, c.conn.(*net.TCPConn).SetReadBuffer(32<<10))
	flood := bytes.Repeat([]byte("x"), 32<<20)
	before := heapInUse()
	_, err := c.conn.Write(flood)
	require.NoError(t, err, "the server should have taken all 32 MB")
	// The server may still be reading the last of it from the kernel:
	// look until the heap has grown, or give up.
	grown := func() int64 { return heapInUse() - before }
	deadline := time.Now().Add(wait)
	g := grown()
	for g < 16<<20 && time.Now().Before(deadline) {
		<-time.After(10 * time.Millisecond)
		g = grown()
	}
	runtime.KeepAlive(flood) // held since before, so not part of the growth
	t.Logf("heap in use grew by %d bytes for a client that sent %d and read nothing", g, len(flood))
	assert.GreaterOrEqual(t, g, int64(16<<20), "the server should hold most of what the client sent")
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

// heapInUse is the heap the process uses, after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
