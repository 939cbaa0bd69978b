//go:build linux || darwin

package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Step 4's tests run its serve function in this process: it waits in
// poll, so a server left running after a test costs nothing.

func TestClientThatNeverReadsIsNoLongerRead(t *testing.T) {
	// The fix for step 3. The client sends without reading until a
	// write blocks (300 ms without progress) or 64 MB are out: the loop
	// stopped reading it, so what it sends waits in the kernel's buffers,
	// not in the server's memory. Then it reads, and gets every byte.
	addr := start(t)
	c := connect(t, addr)
	require.NoError(t, c.conn.(*net.TCPConn).SetReadBuffer(32<<10))
	piece := bytes.Repeat([]byte("x"), 64<<10)
	before := heapInUse()
	sent := 0
	for sent < 64<<20 {
		require.NoError(t, c.conn.SetWriteDeadline(time.Now().Add(300*time.Millisecond)))
		n, err := c.conn.Write(piece)
		sent += n
		if err != nil {
			require.True(t, errors.Is(err, os.ErrDeadlineExceeded), "want a blocked write, got %v", err)
			break
		}
	}
	grown := heapInUse() - before
	runtime.KeepAlive(piece)
	t.Logf("the client sent %d bytes before its writes blocked; heap in use grew by %d", sent, grown)
	assert.Less(t, sent, 64<<20, "the server should have stopped reading")
	assert.Less(t, grown, int64(1<<20), "the server should hold little for a client that does not read")

	// Nothing is lost: once the client reads, every byte comes back.
	require.NoError(t, c.conn.SetDeadline(time.Now().Add(wait)))
	require.NoError(t, c.conn.(*net.TCPConn).CloseWrite())
	assert.Equal(t, sent, c.payloadUntilEOF(t), "every byte should come back")
}

func TestPollCostGrowsWithEveryIdleClient(t *testing.T) {
	// The pitfall the next step fixes. poll hands the kernel the whole
	// list on every call, and the kernel checks every socket in it, so
	// each wake-up for one busy client also costs one check per idle
	// client. The test counts the kernel's CPU time (the process's
	// system time) for 500 round trips, with no idle client and with
	// 1000 of them.
	alone := kernelTimePerRoundTrip(t, start(t), 0)
	crowded := kernelTimePerRoundTrip(t, start(t), 1000)
	t.Logf("kernel CPU time per round trip: %v alone, %v with 1000 idle clients", alone, crowded)
	assert.Greater(t, crowded, 3*alone, "poll should cost more with every idle client")
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

// heapInUse is the heap the process uses, after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// kernelTimePerRoundTrip connects idle clients that stay silent, then
// measures the system CPU time of 500 round trips of one more client.
func kernelTimePerRoundTrip(t *testing.T, addr string, idle int) time.Duration {
	t.Helper()
	for range idle {
		conn, err := net.DialTimeout("tcp", addr, wait)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
	}
	// The backlog is first in, first out: once this client is greeted,
	// every idle one has been accepted.
	c := connect(t, addr)
	const trips = 500
	before := systemTime(t)
	for range trips {
		c.echo(t, "ping\n")
	}
	return (systemTime(t) - before) / trips
}

// systemTime is the CPU time the kernel has spent for this process.
func systemTime(t *testing.T) time.Duration {
	t.Helper()
	var ru unix.Rusage
	require.NoError(t, unix.Getrusage(unix.RUSAGE_SELF, &ru))
	return time.Duration(ru.Stime.Nano())
}
