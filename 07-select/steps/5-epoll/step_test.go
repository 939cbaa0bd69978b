//go:build linux || darwin

package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Step 5's tests run its serve function in this process, once with each
// back-end: it waits in the poller, so a server left running after a
// test costs nothing.

func TestEveryBackEndServesManyClientsAtOnce(t *testing.T) {
	for name := range backEnds {
		t.Run(name, func(t *testing.T) {
			addr := start(t, newBackEnd(t, name))
			first, second := connect(t, addr), connect(t, addr)
			second.echo(t, "the second one first\n")
			first.echo(t, "then the first\n")
		})
	}
}

func TestEveryBackEndStopsReadingAClientThatNeverReads(t *testing.T) {
	for name := range backEnds {
		t.Run(name, func(t *testing.T) {
			c := connect(t, start(t, newBackEnd(t, name)))
			require.NoError(t, c.conn.(*net.TCPConn).SetReadBuffer(32<<10))
			piece := bytes.Repeat([]byte("x"), 64<<10)
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
			assert.Less(t, sent, 64<<20, "the server should have stopped reading")
			require.NoError(t, c.conn.SetDeadline(time.Now().Add(wait)))
			require.NoError(t, c.conn.(*net.TCPConn).CloseWrite())
			assert.Equal(t, sent, c.payloadUntilEOF(t), "every byte should come back")
		})
	}
}

func TestTheBestBackEndCostsFarLessThanPollWithThousandsOfIdleClients(t *testing.T) {
	// The fix for step 4. epoll (kqueue on macOS) keeps the list of
	// sockets in the kernel, and a wait costs what the ready sockets
	// cost, so 1000 idle clients change next to nothing. poll, behind
	// the same interface, still pays for every one of them.
	addr, log := startLogged(t, newBackEnd(t, "best"))
	best := kernelTimePerRoundTrip(t, addr, log, 1000)
	addr, log = startLogged(t, newBackEnd(t, "poll"))
	poll := kernelTimePerRoundTrip(t, addr, log, 1000)
	t.Logf("kernel CPU time per round trip with 1000 idle clients: %v with the best back-end, %v with poll", best, poll)
	assert.Greater(t, poll, 3*best, "poll should cost far more than the best back-end")
}

func TestSilentClientIsNeverClosed(t *testing.T) {
	// The pitfall the next step fixes. A client that connects and says
	// nothing keeps its socket as long as it likes: enough of them take
	// every descriptor the server has. Only a deadline on the test's
	// side can show that nothing comes: no goodbye, and no end.
	c := connect(t, start(t, newBackEnd(t, "best")))
	require.NoError(t, c.conn.SetReadDeadline(time.Now().Add(500*time.Millisecond)))
	_, err := c.r.ReadByte()
	assert.True(t, errors.Is(err, os.ErrDeadlineExceeded), "want nothing at all for 500 ms, got %v", err)
}

// ---- the machinery ----

// wait bounds every blocking step, so that a broken step fails a test
// instead of hanging it.
const wait = 10 * time.Second

// start runs the step's server with poller p on a free port, logging
// into a buffer, and returns its address.
func start(t *testing.T, p poller) string {
	t.Helper()
	addr, _ := startLogged(t, p)
	return addr
}

// startLogged is start, and also returns the server's log.
func startLogged(t *testing.T, p poller) (string, *syncBuffer) {
	t.Helper()
	lfd, err := listen("127.0.0.1:0")
	require.NoError(t, err)
	log := &syncBuffer{notify: make(chan struct{}, 1)}
	go serve(lfd, p, log)
	return localAddr(lfd), log
}

// backEnds builds each poller this platform has, by name.
var backEnds = map[string]func() (poller, error){
	"poll": func() (poller, error) { return newPoll(), nil },
	"best": newBestPoller, // epoll on Linux, kqueue on macOS
}

func newBackEnd(t *testing.T, name string) poller {
	t.Helper()
	p, err := backEnds[name]()
	require.NoError(t, err)
	return p
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
