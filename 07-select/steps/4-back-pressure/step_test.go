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
	"strings"
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
	// system time) per round trip, with no idle client and with 1000 of
	// them.
	addr, log := startLogged(t)
	alone := kernelTimePerRoundTrip(t, addr, log, 0)
	addr, log = startLogged(t)
	crowded := kernelTimePerRoundTrip(t, addr, log, 1000)
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
	addr, _ := startLogged(t)
	return addr
}

// startLogged is start, and also returns the server's log.
func startLogged(t *testing.T) (string, *syncBuffer) {
	t.Helper()
	lfd, err := listen("127.0.0.1:0")
	require.NoError(t, err)
	log := &syncBuffer{notify: make(chan struct{}, 1)}
	go serve(lfd, log)
	return localAddr(lfd), log
}

// syncBuffer is a log that the server goroutine and a test may share.
type syncBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	notify chan struct{} // something was written (capacity 1), or nil
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	select {
	case b.notify <- struct{}{}:
	default:
	}
	return n, err
}

// waitForCount waits until the log holds n lines that contain part.
func (b *syncBuffer) waitForCount(t *testing.T, part string, n int) {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		got := strings.Count(b.buf.String(), part)
		b.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-b.notify:
		case <-deadline.C:
			t.Fatalf("the server logged %d lines containing %q, want %d", got, part, n)
		}
	}
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
// measures the system CPU time per round trip of one more client. When
// the test ends, it waits until the server has seen every one of them
// leave: a server still closing a thousand clients in the background
// would add its kernel time to the next measurement.
func kernelTimePerRoundTrip(t *testing.T, addr string, log *syncBuffer, idle int) time.Duration {
	t.Helper()
	t.Cleanup(func() { log.waitForCount(t, " left", idle+1) }) // after the closes below
	for range idle {
		// Each reads its greeting, so that it closes cleanly (a socket
		// closed with unread data is reset, and the server says nothing).
		connect(t, addr)
	}
	c := connect(t, addr)
	// The kernel splits a process's CPU time into user and system time
	// by sampling, on each clock tick (every 4 ms at Linux's usual
	// 250 Hz), so the round trips go on until the process has used
	// 200 ms of CPU: 50 ticks, enough for the split to be close.
	const budget = 200 * time.Millisecond
	before := cpuTimes(t)
	trips := 0
	for {
		for range 50 {
			c.echo(t, "ping\n")
		}
		trips += 50
		if now := cpuTimes(t); now.total-before.total >= budget {
			return (now.system - before.system) / time.Duration(trips)
		}
	}
}

// times is the CPU time this process has used: in all, and in the
// kernel.
type times struct{ total, system time.Duration }

func cpuTimes(t *testing.T) times {
	t.Helper()
	var ru unix.Rusage
	require.NoError(t, unix.Getrusage(unix.RUSAGE_SELF, &ru))
	system := time.Duration(ru.Stime.Nano())
	return times{total: time.Duration(ru.Utime.Nano()) + system, system: system}
}
