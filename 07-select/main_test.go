//go:build linux || darwin

// The lesson's claims, each tested against every readiness back-end of
// the platform where the claim concerns the loop (forEachPoller). The
// machinery is in helpers_test.go.

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
	"golang.org/x/sys/unix"
)

func TestGreetsEachClientWithOneLine(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		srv := startServer(t, "-poller", poller)
		c := connect(t, srv.addr) // checks the greeting
		// Nothing follows the greeting until the client speaks. Only a
		// short read deadline can show that nothing arrives.
		require.NoError(t, c.conn.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
		_, err := c.r.ReadByte()
		assert.True(t, isTimeout(err), "want no bytes after the greeting, got %v", err)
	})
}

func TestAnswersEachChunkWithOK(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		srv := startServer(t, "-poller", poller)
		c := connect(t, srv.addr)
		c.echo(t, "hello\n")
		c.echo(t, "a second message\n")
		// A 10000-byte message takes at least three 4096-byte reads, so
		// it comes back as several "OK..." chunks.
		big := strings.Repeat("abcdefghij", 1000)
		raw := c.echo(t, big)
		assert.GreaterOrEqual(t, strings.Count(raw, "OK..."), 3)
	})
}

func TestAllClientsAreServedAtOnce(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		// Every client dials from 127.0.0.1: lift the per-address cap.
		srv := startServer(t, "-poller", poller, "-max-conns-per-ip", "0")
		const n = 300
		// All connect and are greeted before any of them speaks: one
		// goroutine on the server holds them all open at once.
		clients := make([]*client, n)
		for i := range clients {
			clients[i] = connect(t, srv.addr)
		}
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.echo(t, fmt.Sprintf("client %d here\n", i))
			}()
		}
		wg.Wait()
	})
}

func TestBusyLoopBurnsCPUWhileTheReadinessLoopSleeps(t *testing.T) {
	// Each server sits idle with no client for the same window, and
	// getrusage tells how much CPU time the process used meanwhile.
	const window = 200 * time.Millisecond
	idleCPU := func(args ...string) time.Duration {
		srv := startServer(t, args...)
		srv.out.waitFor(t, "waiting for events with")
		runtime.GC() // so leftovers of earlier tests are not counted
		before := cpuTime(t)
		<-time.After(window) // the measurement period itself, not a wait for an event
		used := cpuTime(t) - before
		srv.stop()
		require.NoError(t, srv.wait(t))
		return used
	}
	busy := idleCPU("-busy")
	for _, poller := range pollerNames() {
		sleeping := idleCPU("-poller", poller)
		t.Logf("CPU used in %v idle: busy loop %v, %s %v", window, busy, poller, sleeping)
		// Generous margins: the busy loop gets a good share of a core
		// even on a loaded machine, the sleeping loop a few scheduler
		// ticks at most.
		assert.Greater(t, busy, window/20, "the busy loop should burn CPU")
		assert.Less(t, sleeping*3, busy, "%s should use far less CPU than the busy loop", poller)
		assert.Less(t, sleeping, window/10, "an idle %s server should use next to no CPU", poller)
	}
}

func TestBusyLoopStillSpeaksTheProtocol(t *testing.T) {
	srv := startServer(t, "-busy")
	assert.Equal(t, "waiting for events with a busy loop (no waiting at all)", srv.out.next(t))
	c := connect(t, srv.addr)
	c.echo(t, "right answers, wrong method\n")
}

func TestByteAtATimeSenderGetsEveryByteBack(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		srv := startServer(t, "-poller", poller)
		c := connect(t, srv.addr)
		// Each byte may arrive as its own chunk and get its own
		// "OK..."; stripped of the markers, the bytes come back whole.
		msg := "one byte at a time\n"
		var raw []byte
		buf := make([]byte, 4096)
		for i := 0; i < len(msg); i++ {
			_, err := c.conn.Write([]byte{msg[i]})
			require.NoError(t, err)
		}
		for strings.ReplaceAll(string(raw), marker, "") != msg {
			n, err := c.r.Read(buf)
			require.NoError(t, err, "got %q so far", raw)
			raw = append(raw, buf[:n]...)
		}
	})
}

// ---- what the articles do not handle ----

func TestRepliesToAClientThatDoesNotReadAreBufferedThenItIsNoLongerRead(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		srv := startServer(t, "-poller", poller)
		c := connect(t, srv.addr)
		// Small buffers on this side keep the amount in flight (and
		// the test) small; the server's own buffers still grow.
		require.NoError(t, c.conn.(*net.TCPConn).SetReadBuffer(32<<10))
		require.NoError(t, c.conn.(*net.TCPConn).SetWriteBuffer(32<<10))

		// Send a known pattern without reading: 64 KB of letters
		// (never an 'O', so markers are easy to strip), repeated. The
		// server's writes soon take only part of a reply, then none
		// (EAGAIN); it keeps the rest, and past its bound it stops
		// reading this client.
		piece := make([]byte, 64<<10)
		for i := range piece {
			piece[i] = "abcdefghijklmnopqrstuvwxyz"[(i*7+i/26)%26]
		}
		sentCh := make(chan int, 1)
		go func() {
			sent := 0
			for {
				// Once the server has stopped reading, a write blocks.
				// 300ms without progress is taken to mean "blocked".
				c.conn.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
				n, err := c.conn.Write(piece[sent%len(piece):])
				sent += n
				if err != nil {
					sentCh <- sent
					return
				}
			}
		}()
		srv.out.waitFor(t, "is not reading its replies; stopped reading it until they drain")
		sent := <-sentCh
		assert.Less(t, sent, 64<<20, "reading should have stopped long before 64 MB")

		// Now read: every byte comes back, in order, after its markers.
		// Nothing was dropped while the client was not reading.
		c.conn.SetReadDeadline(time.Now().Add(wait))
		got := make([]byte, 0, sent)
		skip := 0
		buf := make([]byte, 64<<10)
		for len(got) < sent {
			n, err := c.r.Read(buf)
			require.NoError(t, err, "after %d of %d bytes", len(got), sent)
			for _, b := range buf[:n] {
				switch {
				case skip > 0:
					skip--
				case b == 'O':
					skip = len(marker) - 1
				default:
					got = append(got, b)
				}
			}
		}
		want := bytes.Repeat(piece, sent/len(piece)+1)[:sent]
		assert.True(t, bytes.Equal(want, got), "the replies differ from what was sent")
		c.echo(t, "and the conversation goes on\n")
	})
}

func TestFloodingClientThatNeverReadsDoesNotStallOthers(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		srv := startServer(t, "-poller", poller)
		flooder := dial(t, srv.addr)
		flooded := make(chan int64, 1)
		go func() {
			// Up to 64 MB, never reading a byte. Each write has its own
			// deadline: once the server stops reading, writes block.
			var sent int64
			piece := bytes.Repeat([]byte("flood "), 10000)
			for sent < 64<<20 {
				flooder.SetWriteDeadline(time.Now().Add(wait))
				n, err := flooder.Write(piece)
				sent += int64(n)
				if err != nil {
					break
				}
			}
			flooded <- sent
		}()
		srv.out.waitFor(t, "is not reading its replies")

		// Everybody else is still served while the flood is held back.
		for i := 0; i < 5; i++ {
			c := connect(t, srv.addr)
			c.echo(t, "am I served?\n")
		}
		flooder.Close()
		assert.Less(t, <-flooded, int64(64<<20), "the server should have stopped reading the flood")
	})
}

func TestSilentClientIsToldAndClosedAfterIdleTimeout(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		srv := startServer(t, "-poller", poller, "-idle-timeout", "100ms")
		c := connect(t, srv.addr)
		rest, err := io.ReadAll(c.r)
		c.conn.Close()
		require.NoError(t, err, "the server should close with FIN, not reset")
		assert.Equal(t, "bye: idle for 100ms, closing\n", string(rest))
		srv.out.waitFor(t, "idle, closed")

		// A client that keeps talking is not idle, however long it stays.
		fresh := connect(t, srv.addr)
		for i := 0; i < 3; i++ {
			fresh.echo(t, "keeping busy\n")
		}
	})
}

func TestClientsBeyondMaxConnsWaitOrAreToldFull(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		srv := startServer(t, "-poller", poller, "-max-conns", "2")
		first := connect(t, srv.addr)
		connect(t, srv.addr)

		// The third connects (the kernel completes the handshake and
		// queues it in the backlog) but is not accepted, so it gets no
		// greeting. A short deadline is how to show that nothing comes.
		third := dial(t, srv.addr)
		third.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, err := third.Read(make([]byte, 1))
		require.True(t, isTimeout(err), "the third client should wait, got %v", err)

		// As soon as one leaves, the waiting client is served.
		first.conn.Close()
		third.SetReadDeadline(time.Now().Add(wait))
		c := &client{conn: third, r: bufio.NewReader(third)}
		line, err := c.r.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, greetingLine, line)
		c.echo(t, "my turn\n")
	})
}

func TestTricklingClientsFromOneAddressCannotTakeEverySlot(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		srv := startServer(t, "-poller", poller, "-max-conns", "3", "-max-conns-per-ip", "2")
		// Two tricklers from 127.0.0.1 take their address's share and
		// keep it: a byte now and then keeps each from being idle.
		for range 2 {
			connect(t, srv.addr).echo(t, "x")
		}
		// More from the same address are told why and closed with FIN.
		// They never take a slot, so each one is answered at once.
		for range 3 {
			got, err := io.ReadAll(dial(t, srv.addr))
			require.NoError(t, err, "want the line and a clean EOF (FIN), not a reset")
			assert.Equal(t, "bye: too many connections from your address (limit 2), closing\n", string(got))
			srv.out.waitFor(t, "refused: already 2 connections from 127.0.0.1 (-max-conns-per-ip)")
		}
		// A well-behaved client from another address gets the last slot.
		connectFrom(t, "127.0.0.2", srv.addr).echo(t, "my turn\n")
	})
}

func TestServerSurvivesHundredsOfClientsResettingMidStream(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		// 200 clients from 127.0.0.1: lift the per-address cap.
		srv := startServer(t, "-poller", poller, "-max-conns-per-ip", "0")
		// One event loop serves every client: no goroutine per client.
		running := len(lessonGoroutines())
		var wg sync.WaitGroup
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn, err := net.DialTimeout("tcp", srv.addr, wait)
				if !assert.NoError(t, err) {
					return
				}
				conn.Write([]byte("half a sentence and th"))
				// Linger 0 makes Close send RST instead of FIN.
				conn.(*net.TCPConn).SetLinger(0)
				conn.Close()
			}()
		}
		wg.Wait()
		connect(t, srv.addr).echo(t, "still there?\n")
		// The storm started no goroutine that is still running.
		// (At most as many as before: one that was passing through,
		// such as the log writer's, may have finished meanwhile.)
		assert.LessOrEqual(t, len(lessonGoroutines()), running, "goroutines running the program after the storm")
	})
}

// Not parallel, like every test here: failAccept swaps acceptFunc,
// which belongs to the whole package.
func TestAcceptLoopSurvivesAClientThatAbortedInTheBacklog(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		// Three clients gave up while they waited in the backlog. Linux
		// never shows that on loopback, so the test stands in for the
		// kernel: accept fails three times, then works as usual.
		fake := failAccept(t, unix.ECONNABORTED, unix.ECONNABORTED, unix.ECONNABORTED)
		srv := startServer(t, "-poller", poller)

		c := connect(t, srv.addr)
		c.echo(t, "still there?\n")
		assert.GreaterOrEqual(t, len(fake.times()), 4, "three failed accepts, then the real one")
		srv.out.waitFor(t, "connected") // the log is written by its own goroutine

		// Each failure is retried at once, and nothing is logged for it:
		// the growing pause would have logged "retrying with a growing
		// pause". The log holds only the client's arrival.
		want := fmt.Sprintf("listening on %s\nwaiting for events with %s\nclient %s connected\n",
			srv.addr, poller, c.conn.LocalAddr())
		assert.Equal(t, want, srv.out.String())
	})
}

func TestAcceptLoopBacksOffWhenTheSystemRunsOutOfFiles(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		// ENFILE: the whole system's file table is full. Filling it for
		// real would starve every program on the machine, so the test
		// stands in for the kernel: accept fails three times with ENFILE,
		// then works again.
		fake := failAccept(t, unix.ENFILE, unix.ENFILE, unix.ENFILE)
		srv := startServer(t, "-poller", poller)

		// The client waits in the backlog through the failures.
		conn := dial(t, srv.addr)
		srv.out.waitFor(t, unix.ENFILE.Error()+"; retrying with a growing pause of up to 1s")
		c := &client{conn: conn, r: bufio.NewReader(conn)}
		line, err := c.r.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, greetingLine, line)
		c.echo(t, "back again?\n")

		// Like EMFILE, it takes the growing pause: the loop waited at
		// least 5, 10 and 20 ms before each new try, and logged the
		// trouble once, not once per failure.
		calls := fake.times()
		require.GreaterOrEqual(t, len(calls), 4, "three failed accepts, then the real one")
		for i, pause := range []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond} {
			assert.GreaterOrEqual(t, calls[i+1].Sub(calls[i]), pause, "pause after failure %d", i+1)
		}
		assert.Equal(t, 1, strings.Count(srv.out.String(), "retrying with a growing pause"), srv.out.String())
	})
}

func TestAClientWhoseSocketCannotBeSetUpIsDroppedAndTheNextIsServed(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		// On macOS, making an accepted socket non-blocking is a call of
		// its own after accept, and it can fail. Linux does both in one
		// call, so the test stands in for the kernel: the first accept
		// takes the client, closes its socket and fails as that call
		// would. Only the loop's goroutine calls acceptFunc.
		first := true
		acceptFunc = func(lfd int) (int, unix.Sockaddr, error) {
			fd, sa, err := acceptConn(lfd)
			if err != nil || !first {
				return fd, sa, err
			}
			first = false
			unix.Close(fd)
			return -1, sa, os.NewSyscallError("fcntl", unix.EBADF)
		}
		t.Cleanup(func() { acceptFunc = acceptConn })
		srv := startServer(t, "-poller", poller)

		// That client is dropped: it gets no greeting, only the end.
		lost := dial(t, srv.addr)
		_, err := lost.Read(make([]byte, 1))
		require.Error(t, err)
		require.False(t, isTimeout(err), "the lost client should be closed, not left waiting")
		srv.out.waitFor(t, "client "+lost.LocalAddr().String()+": fcntl: bad file descriptor")
		// The server goes on: the next client is served.
		connect(t, srv.addr).echo(t, "still serving?\n")
	})
}

func TestExplainTellsAFullSystemFromAFullProcess(t *testing.T) {
	// EMFILE is this process's limit, which ulimit -n raises; ENFILE is
	// the whole system's table, which it does not.
	assert.Contains(t, explain(os.NewSyscallError("socket", unix.EMFILE)), "raise the limit (ulimit -n)")
	enfile := explain(os.NewSyscallError("socket", unix.ENFILE))
	assert.Contains(t, enfile, "the whole system is out of open files")
	assert.NotContains(t, enfile, "ulimit")
	assert.Contains(t, enfile, "(see docs/errors.md#emfile)")
}

// ---- stopping ----

func TestStopWithNoClientsExitsCleanly(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		srv := startServer(t, "-poller", poller)
		srv.stop() // what Ctrl+C does
		require.NoError(t, srv.wait(t))
		assert.Contains(t, srv.out.String(), "shutting down: saying bye to 0 clients\nstopped\n")
	})
}

func TestShutdownSendsEveryClientItsFinalLineAndCleanEOF(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		srv := startServer(t, "-poller", poller)
		clients := make([]*client, 20)
		for i := range clients {
			clients[i] = connect(t, srv.addr)
			clients[i].echo(t, "mid-conversation\n")
		}
		// Half of them have just sent something more: its reply, if
		// the server produced it, must arrive before the final line.
		for _, c := range clients[:10] {
			_, err := c.conn.Write([]byte("one more\n"))
			require.NoError(t, err)
		}
		srv.stop()
		for _, c := range clients {
			rest, err := io.ReadAll(c.r)
			c.conn.Close() // a polite client closes when it reads the end
			require.NoError(t, err, "want a clean EOF (FIN), not a reset")
			before, ok := strings.CutSuffix(string(rest), "bye: server shutting down\n")
			require.True(t, ok, "want the final line last, got %q", rest)
			assert.Contains(t, []string{"", "OK...one more\n"}, before)
		}
		require.NoError(t, srv.wait(t))
		assert.Contains(t, srv.out.String(), "shutting down: saying bye to 20 clients\nstopped\n")
	})
}

func TestShutdownWaitsAtMostGraceForClientsThatDoNotRead(t *testing.T) {
	srv := startServer(t, "-grace", "100ms")
	stuck := dial(t, srv.addr)
	// Fill the server's buffers with replies this client never reads.
	go func() {
		piece := bytes.Repeat([]byte("z"), 64<<10)
		for {
			stuck.SetWriteDeadline(time.Now().Add(wait))
			if _, err := stuck.Write(piece); err != nil {
				return
			}
		}
	}()
	srv.out.waitFor(t, "is not reading its replies")
	srv.stop()
	require.NoError(t, srv.wait(t), "a stuck client must not keep the server from exiting")
	assert.Contains(t, srv.out.String(), "did not finish within -grace, closed")
}

func TestALogNobodyReadsStopsNeitherServiceNorShutdown(t *testing.T) {
	// Standard output is a pipe nobody reads: its first write blocks
	// until the test lets it go.
	stdout := &stuckWriter{to: newLines(), release: make(chan struct{})}
	t.Cleanup(stdout.unstick)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const grace = 300 * time.Millisecond
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-grace", grace.String()}, nil, stdout, io.Discard)
	}()
	addr, ok := strings.CutPrefix(stdout.to.next(t), "listening on ")
	require.True(t, ok, "the first line, the one stuck, gives the address")

	// 600 clients come and go, each worth two log lines: far more than
	// the log's queue holds. Every one is served.
	const clients = 600
	for i := range clients {
		c := connect(t, addr)
		c.echo(t, fmt.Sprintf("client %d while the log is stuck\n", i))
		c.conn.Close()
	}

	// Ctrl+C still stops the server within -grace, stuck log or not.
	stopped := time.Now()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(wait):
		t.Fatal("run did not return while its standard output was stuck")
	}
	took := time.Since(stopped)
	t.Logf("run returned %v after the stop, with -grace %v", took, grace)
	assert.Less(t, took, grace+700*time.Millisecond, "run should return within -grace (a little more on a busy machine)")

	// Once the log moves again, it says how much it lost: right after
	// the write that was stuck, then the 1024 lines that were queued.
	// The stuck write holds "listening on", and "waiting for events
	// with" too when it came within the log's linger (5 ms).
	stdout.unstick()
	drop := stdout.to.waitFor(t, "lines dropped while the log was not being read")
	assert.Regexp(t, `^log: \d+ lines dropped while the log was not being read$`, drop)
	stuck := slices.Index(strings.Split(stdout.to.String(), "\n"), drop)
	require.True(t, stuck == 1 || stuck == 2, "the count comes right after the stuck write's lines:\n%s", stdout.to.String())
	logged := strings.Split(strings.TrimSuffix(stdout.to.waitForLines(t, stuck+1+logQueueLines), "\n"), "\n")
	if stuck == 2 {
		assert.True(t, strings.HasPrefix(logged[1], "waiting for events with "), "the second stuck line: %q", logged[1])
	}
	assert.Len(t, logged, stuck+1+logQueueLines)
}

func TestLogQueueDropsLinesWhileNobodyReadsAndThenSaysHowMany(t *testing.T) {
	stdout := &stuckWriter{to: newLines(), release: make(chan struct{})}
	t.Cleanup(stdout.unstick)
	q := newLogQueue(stdout)
	fmt.Fprintln(q, "first")
	require.Equal(t, "first", stdout.to.next(t), "the writer should be stuck writing the first line")
	// The queue holds logQueueLines lines; five more find it full.
	start := time.Now()
	for i := range logQueueLines + 5 {
		fmt.Fprintln(q, i)
	}
	assert.Less(t, time.Since(start), time.Second, "writing to the queue must never wait")
	stdout.unstick()
	q.close(time.Now().Add(wait))

	want := []string{"first", "log: 5 lines dropped while the log was not being read"}
	for i := range logQueueLines {
		want = append(want, fmt.Sprint(i))
	}
	assert.Equal(t, want, strings.Split(strings.TrimSuffix(stdout.to.String(), "\n"), "\n"))
}

// A line waits a moment (logLinger, 5 ms) for the lines that follow it,
// so that a crowd of clients coming and going costs the loop's log a few
// writes, not two each. Here the moment is an hour, so that the test
// does not race the clock, and close ends it at once.
func TestALineWaitsForTheNextOnesToShareItsWrite(t *testing.T) {
	var writes []string // only the writing goroutine appends, before done
	out := writerFunc(func(p []byte) (int, error) {
		writes = append(writes, string(p))
		return len(p), nil
	})
	q := &logQueue{out: out, lines: make(chan []byte, logQueueLines),
		stop: make(chan struct{}), done: make(chan struct{}), linger: time.Hour}
	go q.writeOut()

	q.Write([]byte("first\n"))
	// Once the queue is empty, the writer holds "first" and lingers;
	// without the linger it would write "first" alone right away.
	for deadline := time.Now().Add(wait); len(q.lines) > 0; {
		require.True(t, time.Now().Before(deadline), "the writer never took the first line")
		runtime.Gosched()
	}
	q.Write([]byte("second\n"))
	q.close(time.Now().Add(wait))
	select {
	case <-q.done:
	case <-time.After(wait):
		t.Fatal("close did not end the linger")
	}
	assert.Equal(t, []string{"first\nsecond\n"}, writes)
}

// writerFunc makes a function an io.Writer.
type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestNoGoroutineLeaksAfterShutdown(t *testing.T) {
	srv := startServer(t)
	var clients []*client
	for i := 0; i < 5; i++ {
		c := connect(t, srv.addr)
		c.echo(t, "hi\n")
		clients = append(clients, c)
	}
	// The check below must be able to see the server's goroutines.
	require.NotEmpty(t, lessonGoroutines(), "the running server's goroutines are not recognised")
	srv.stop()
	for _, c := range clients {
		io.ReadAll(c.r)
		c.conn.Close()
	}
	require.NoError(t, srv.wait(t))

	// Goroutines end a moment after run returns (the AfterFunc, say), so
	// look again until none is left in this package's code, or give up.
	deadline := time.After(wait)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		leaked := lessonGoroutines()
		if len(leaked) == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("goroutines still running after shutdown:\n%s", strings.Join(leaked, "\n\n"))
		}
	}
}

// ---- memory ----

func TestMemoryStaysFixedWhileAClientStreams8MB(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		srv := startServer(t, "-poller", poller)
		c := connect(t, srv.addr)
		const size = 8 << 20
		data := bytes.Repeat([]byte("x"), size)
		buf := make([]byte, 64<<10)

		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		sent := make(chan error, 1)
		go func() {
			_, err := c.conn.Write(data)
			sent <- err
		}()
		// Count the x's that come back; the "OK..." markers are not x's.
		for got := 0; got < size; {
			n, err := c.r.Read(buf)
			require.NoError(t, err)
			got += bytes.Count(buf[:n], []byte("x"))
		}
		require.NoError(t, <-sent)
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(data) // held since before, so not part of the difference

		// The loop reads into one shared 4096-byte buffer, and a
		// client's unsent replies are dropped once written: after 8 MB,
		// the heap holds next to nothing more than before. (Unlike 05
		// and 06, each chunk's reply is a fresh buffer, so the process
		// allocates about as much as it streams; the GC takes it back.)
		held := int64(after.HeapInuse) - int64(before.HeapInuse)
		t.Logf("allocated %d bytes while streaming %d; heap in use grew by %d", after.TotalAlloc-before.TotalAlloc, size, held)
		assert.Less(t, held, int64(1<<20), "heap grew by %d bytes while streaming %d", held, size)
	})
}

func TestMemoryStaysFixedWhileAClientSendsOneByteAtATime(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		srv := startServer(t, "-poller", poller)
		c := connect(t, srv.addr)
		require.NoError(t, c.conn.SetDeadline(time.Now().Add(wait)))
		const bytesSent = 2000
		one := []byte("z")
		reply := make([]byte, len(marker)+1)

		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		// Lock-step: each byte is a wake-up, a read and a write of its
		// own, the most work per byte a client can cause.
		for i := 0; i < bytesSent; i++ {
			_, err := c.conn.Write(one)
			require.NoError(t, err)
			_, err = io.ReadFull(c.r, reply)
			require.NoError(t, err)
		}
		runtime.ReadMemStats(&after)
		require.Equal(t, marker+"z", string(reply))

		allocated := after.TotalAlloc - before.TotalAlloc
		t.Logf("allocated %d bytes for %d one-byte messages", allocated, bytesSent)
		assert.Less(t, allocated, uint64(100*bytesSent), "allocated %d bytes for %d one-byte messages", allocated, bytesSent)
	})
}

func TestClientsThatNeverReadHoldAFixedAmountOfMemoryEach(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		srv := startServer(t, "-poller", poller, "-idle-timeout", "1m")
		const clients = 20
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)

		// Each client sends without reading until a write blocks for
		// 100 ms: the loop has stopped reading from it, because its
		// unsent replies reached 64 KiB.
		var wg sync.WaitGroup
		sentTotal := make(chan int, clients)
		for i := 0; i < clients; i++ {
			c := connect(t, srv.addr)
			wg.Add(1)
			go func() {
				defer wg.Done()
				chunk := make([]byte, 64<<10)
				sent := 0
				for {
					c.conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
					n, err := c.conn.Write(chunk)
					sent += n
					if err != nil {
						sentTotal <- sent
						return
					}
				}
			}()
		}
		wg.Wait()
		close(sentTotal)
		total := 0
		for n := range sentTotal {
			total += n
		}
		runtime.GC()
		runtime.ReadMemStats(&after)

		// What the loop holds for each is at most 64 KiB of replies
		// plus one chunk, in a buffer that append may have grown to
		// twice that; the rest of the flood waits in the kernel.
		held := int64(after.HeapInuse) - int64(before.HeapInuse)
		t.Logf("%d clients sent %d bytes; heap in use grew by %d bytes", clients, total, held)
		assert.Less(t, held, int64(clients*256<<10), "heap grew by %d bytes for %d clients", held, clients)
		assert.Greater(t, total, clients*128<<10, "each client got more than 128 KiB in before its writes blocked")
	})
}

// TestAReplyTheKernelTakesAtOnceIsNeitherCopiedNorAllocated shows the
// fast path of eventLoop.read: with nothing queued for the client, the
// reply goes out straight from the shared buffer, before read returns,
// and the connection keeps no bytes. A connected pair of Unix sockets
// stands in for the client, so nothing else in the process allocates.
func TestAReplyTheKernelTakesAtOnceIsNeitherCopiedNorAllocated(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		require.NoError(t, err)
		server, client := fds[0], fds[1]
		t.Cleanup(func() { unix.Close(server); unix.Close(client) })
		// Non-blocking on both ends: a reply that was not sent at once
		// shows up as EAGAIN below instead of a hang.
		require.NoError(t, unix.SetNonblock(server, true))
		require.NoError(t, unix.SetNonblock(client, true))

		p, err := newPoller(poller, false)
		require.NoError(t, err)
		t.Cleanup(func() { p.close() })
		l := newEventLoop(config{idleTimeout: time.Minute}, io.Discard, p)
		c := &conn{fd: server, peer: "socketpair", want: canRead}
		require.NoError(t, p.add(server, canRead))
		c.age = l.byAge.PushFront(c)
		l.conns[server] = c

		message := []byte("sixty-four bytes would do, and so does this line\n")
		want := append([]byte(marker), message...)
		reply := make([]byte, 2*len(want))
		var got int
		var readErr error
		exchange := func() {
			unix.Write(client, message)
			l.read(c)
			got, readErr = unix.Read(client, reply)
		}

		exchange()
		require.NoError(t, readErr, "the reply should be waiting as soon as read returns")
		assert.Equal(t, string(want), string(reply[:got]))
		assert.Nil(t, c.out, "nothing should be queued for the client")

		allocs := testing.AllocsPerRun(200, exchange)
		require.NoError(t, readErr)
		assert.Equal(t, string(want), string(reply[:got]))
		assert.Zero(t, allocs, "allocations per request on the fast path")
	})
}

// ---- the interactive client ----

func TestClientModeSendsLinesAndPrintsReplies(t *testing.T) {
	srv := startServer(t)
	var out bytes.Buffer
	err := runWithTimeout(t, []string{"-client", "-addr", srv.addr}, strings.NewReader("hello\nworld\n"), &out)
	require.NoError(t, err)
	assert.Equal(t, greetingLine+"OK...hello\nOK...world\n", out.String())
	srv.out.waitFor(t, "left")
}

func TestClientPrintsTheServersGoodbyeAndSaysOnceThatItClosed(t *testing.T) {
	srv := startServer(t, "-idle-timeout", "200ms")
	// Standard input stays open, as a terminal does while you think: the
	// server's idle timeout ends the conversation first.
	stdin, typing := io.Pipe()
	t.Cleanup(func() { typing.Close() })
	c := startClient(t, []string{"-addr", srv.addr}, stdin)
	require.NoError(t, c.wait(t), "a server that closes is no failure of the client's")
	// The goodbye is printed as the server's own line, then one line on
	// stderr says what happened.
	assert.Equal(t, greetingLine+"bye: idle for 200ms, closing\n", c.stdout.String())
	assert.Equal(t, "server closed the connection\n", c.stderr.String())
}

func TestClientTurnedAwayByThePerAddressCapSaysSoOnce(t *testing.T) {
	srv := startServer(t, "-max-conns-per-ip", "1")
	connect(t, srv.addr) // takes the one slot of 127.0.0.1
	stdin, typing := io.Pipe()
	t.Cleanup(func() { typing.Close() })
	c := startClient(t, []string{"-addr", srv.addr}, stdin)
	require.NoError(t, c.wait(t))
	assert.Equal(t, "bye: too many connections from your address (limit 1), closing\n", c.stdout.String())
	assert.Equal(t, "server closed the connection\n", c.stderr.String())
}

func TestClientStopsQuietlyOnCtrlC(t *testing.T) {
	srv := startServer(t)
	stdin, typing := io.Pipe()
	t.Cleanup(func() { typing.Close() })
	c := startClient(t, []string{"-addr", srv.addr}, stdin)
	c.stdout.waitFor(t, strings.TrimSuffix(greetingLine, "\n"))
	c.stop() // what Ctrl+C does
	require.NoError(t, c.wait(t))
	assert.Equal(t, greetingLine, c.stdout.String())
	assert.Empty(t, c.stderr.String())
}

func TestAddressWithoutAHostGetsAHint(t *testing.T) {
	for _, args := range [][]string{{"-addr", "9007"}, {"-client", "-addr", "9007"}} {
		err := runWithTimeout(t, args, strings.NewReader(""), io.Discard)
		require.Error(t, err)
		want := "listen on 9007: "
		if args[0] == "-client" {
			want = "connect to 9007: "
		}
		assert.Equal(t, want+"address 9007: missing port in address (write host:port, e.g. 127.0.0.1:9007 or :9007)", explain(err))
	}
}

func TestClientReportsConnectionRefused(t *testing.T) {
	err := runWithTimeout(t, []string{"-client", "-addr", closedPort(t)}, strings.NewReader("hi\n"), io.Discard)
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.ECONNREFUSED), "want ECONNREFUSED, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#econnrefused)")
}

func TestWorksWithNetcat(t *testing.T) {
	nc := lookTool(t, "nc")
	srv := startServer(t)
	host, port, _ := net.SplitHostPort(srv.addr)
	// -N: send FIN when the input ends, so the server sees the client
	// leave and closes after the last reply, which ends nc.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, nc, "-N", host, port)
	cmd.Stdin = strings.NewReader("hi from nc\n")
	got, err := cmd.Output()
	require.NoError(t, err)
	assert.Equal(t, greetingLine+"OK...hi from nc\n", string(got))
}

// ---- the load generator ----

func TestLoadGeneratorPrintsOneParseableSummaryLine(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		srv := startServer(t, "-poller", poller)
		var out bytes.Buffer
		err := runWithTimeout(t, []string{"-client", "-addr", srv.addr, "-poller", poller, "-conns", "20", "-messages", "10", "-size", "100"}, nil, &out)
		require.NoError(t, err)
		line, ok := strings.CutSuffix(out.String(), "\n")
		require.True(t, ok)
		require.NotContains(t, line, "\n", "the summary is exactly one line")
		m := summaryLine.FindStringSubmatch(line)
		require.NotNil(t, m, "summary %q does not have the documented format", line)
		assert.Equal(t, []string{"20", "10", "200"}, m[1:])
		// Every connection was served at the same time.
		srv.out.waitFor(t, "left")
	})
}

func TestLoadGeneratorWithDurationPrintsSteadyThenOneSummaryLine(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		srv := startServer(t, "-poller", poller)
		var out bytes.Buffer
		err := runWithTimeout(t, []string{"-client", "-addr", srv.addr, "-poller", poller, "-conns", "20", "-duration", "200ms", "-size", "100"}, nil, &out)
		require.NoError(t, err)
		got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		require.Len(t, got, 2, "a steady line, then the summary; got %q", out.String())
		assert.Equal(t, "steady conns=20", got[0])
		m := summaryLine.FindStringSubmatch(got[1])
		require.NotNil(t, m, "summary %q does not have the documented format", got[1])
		assert.Equal(t, "20", m[1])
		requests, err := strconv.Atoi(m[3])
		require.NoError(t, err)
		assert.Positive(t, requests)
		assert.Equal(t, strconv.Itoa((requests+10)/20), m[2], "messages= is the round trips per connection, rounded")
		assert.Contains(t, got[1], " seconds=0.200 ", "seconds= is the length of the timed phase")
	})
}

func TestLoadGeneratorWithDurationTimesOnlyTheSteadyPhase(t *testing.T) {
	// A server of this lesson's protocol that counts what it receives and
	// which connections have closed, so the test can look at it at the
	// moment each line is printed.
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	var received, closed atomic.Int64
	var handlers sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		handlers.Wait()
	})
	handlers.Add(1)
	go func() {
		defer handlers.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			handlers.Add(1)
			go func() {
				defer handlers.Done()
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(wait))
				if _, err := io.WriteString(conn, greetingLine); err != nil {
					return
				}
				buf := make([]byte, 4096)
				for {
					n, err := conn.Read(buf)
					if err != nil {
						closed.Add(1)
						return
					}
					// Counted before the reply goes out, so the count is
					// complete once the client has every reply.
					received.Add(int64(n))
					if _, err := conn.Write(append([]byte(marker), buf[:n]...)); err != nil {
						return
					}
				}
			}()
		}
	}()

	const conns, size = 5, 64
	var atSteady, closedAtSummary int64 = -1, -1
	out := &lineWatcher{onLine: func(line string) {
		switch {
		case strings.HasPrefix(line, "steady "):
			atSteady = received.Load()
		case strings.HasPrefix(line, "conns="):
			closedAtSummary = closed.Load()
		}
	}}
	err = runWithTimeout(t, []string{"-client", "-addr", ln.Addr().String(), "-conns", strconv.Itoa(conns), "-size", strconv.Itoa(size), "-duration", "100ms"}, nil, out)
	require.NoError(t, err)
	require.Len(t, out.lines, 2, "a steady line, then the summary")
	m := summaryLine.FindStringSubmatch(out.lines[1])
	require.NotNil(t, m, "summary %q does not have the documented format", out.lines[1])
	requests, err := strconv.Atoi(m[3])
	require.NoError(t, err)

	assert.Equal(t, int64(0), atSteady, "no message is sent before the steady line: greeting every connection is not part of the phase")
	assert.Equal(t, int64(0), closedAtSummary, "no connection is closed before the summary line: closing is not part of the phase")
	assert.Equal(t, int64((requests+conns)*size), received.Load(),
		"the server answered every counted round trip and, on each connection, one more: the one that ended after the phase, which is not counted")
}

// lineWatcher is a stdout that calls onLine with each complete line as
// it is written, in the writer's goroutine.
type lineWatcher struct {
	part   string
	lines  []string
	onLine func(string)
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.part += string(p)
	for {
		line, rest, ok := strings.Cut(w.part, "\n")
		if !ok {
			return len(p), nil
		}
		w.part = rest
		w.lines = append(w.lines, line)
		w.onLine(line)
	}
}

func TestDurationWithoutConnsIsAUsageError(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-client", "-duration", "1s"}, nil, io.Discard, &stderr)
	assert.ErrorIs(t, err, errUsage)
	assert.Contains(t, stderr.String(), "-duration makes sense only with -client -conns")
}

func TestNegativeDurationIsAUsageError(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-client", "-conns", "2", "-duration", "-1s"}, nil, io.Discard, &stderr)
	assert.ErrorIs(t, err, errUsage)
	assert.Contains(t, stderr.String(), "-duration must not be negative")
}

func TestLoadGeneratorReportsARefusedConnection(t *testing.T) {
	err := runWithTimeout(t, []string{"-client", "-conns", "3", "-addr", closedPort(t)}, nil, io.Discard)
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.ECONNREFUSED), "want ECONNREFUSED, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#econnrefused)")
}

func TestLoadGeneratorGivesUpWhenTheServerNeverAnswers(t *testing.T) {
	// A listener that never accepts: connects succeed, greetings never come.
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	defer ln.Close()
	err = runWithTimeout(t, []string{"-client", "-conns", "2", "-addr", ln.Addr().String(), "-idle-timeout", "100ms"}, nil, io.Discard)
	require.Error(t, err)
	assert.True(t, isTimeout(err), "want a timeout, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#timeout)")
}

func FuzzReplyCounterCountsThePayloadHoweverTheStreamIsCut(f *testing.F) {
	f.Add(uint16(64), []byte{1, 63}, []byte{3, 7, 20})
	f.Add(uint16(5000), []byte{}, []byte{1, 1, 1, 1, 1})
	f.Fuzz(func(t *testing.T, size uint16, chunks, cuts []byte) {
		payload := bytes.Repeat([]byte("x"), int(size))
		// The server replies to each chunk it read with "OK..." and the
		// chunk; chunks gives where the server's reads split the message.
		var reply []byte
		rest := payload
		for _, c := range chunks {
			if len(rest) == 0 {
				break
			}
			n := min(int(c)+1, len(rest))
			reply = append(append(reply, marker...), rest[:n]...)
			rest = rest[n:]
		}
		if len(rest) > 0 {
			reply = append(append(reply, marker...), rest...)
		}
		// cuts gives where the client's reads split the reply.
		var r replyCounter
		total := 0
		for _, c := range cuts {
			n := min(int(c), len(reply))
			total += r.feed(reply[:n])
			reply = reply[n:]
		}
		total += r.feed(reply)
		if total != len(payload) {
			t.Fatalf("counted %d payload bytes, want %d", total, len(payload))
		}
	})
}

// ---- command line ----

func TestUnknownPollerIsAUsageError(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-poller", "select"}, nil, io.Discard, &stderr)
	assert.ErrorIs(t, err, errUsage)
	assert.Contains(t, stderr.String(), `-poller "select" is not available here`)
}

func TestNegativeMaxConnsPerIPIsAUsageError(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-max-conns-per-ip", "-1"}, nil, io.Discard, &stderr)
	assert.ErrorIs(t, err, errUsage)
	assert.Contains(t, stderr.String(), "-max-conns-per-ip must not be negative (0 means no limit)")
}

func TestConnsWithoutClientIsAUsageError(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-conns", "5"}, nil, io.Discard, &stderr)
	assert.ErrorIs(t, err, errUsage)
	assert.Contains(t, stderr.String(), "-conns makes sense only with -client")
}

func TestBusyAddressFailsWithAddressInUse(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	defer ln.Close()
	err = run(context.Background(), []string{"-addr", ln.Addr().String()}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.EADDRINUSE), "want EADDRINUSE, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#eaddrinuse)")
}

// ---- the README's transcripts ----

func TestReadmeServerTranscript(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the README shows Linux, where the default poller is epoll")
	}
	srv := startServer(t)
	var out bytes.Buffer
	require.NoError(t, runWithTimeout(t, []string{"-client", "-addr", srv.addr}, strings.NewReader("hello\n"), &out))
	srv.out.waitFor(t, "left")
	srv.stop()
	require.NoError(t, srv.wait(t))
	assertTranscript(t, "server", srv.out.String())
}

func TestReadmeClientTranscript(t *testing.T) {
	srv := startServer(t)
	var out bytes.Buffer
	require.NoError(t, runWithTimeout(t, []string{"-client", "-addr", srv.addr}, strings.NewReader("hello\nworld\n"), &out))
	assertTranscript(t, "client", out.String())
}

func TestReadmeIdleTranscript(t *testing.T) {
	srv := startServer(t, "-idle-timeout", "300ms")
	c := dial(t, srv.addr)
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	assertTranscript(t, "idle", string(got))
}

func TestReadmeLoadTranscriptHasTheSummaryFormat(t *testing.T) {
	// The figures in the README were measured once and vary from run to
	// run; this checks that the README's line has the real format.
	block := readmeBlock(t, "load")
	require.Len(t, block, 1)
	assert.Regexp(t, summaryLine, block[0])
}

func TestReadmeAddressInUseTranscript(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	defer ln.Close()
	err = run(context.Background(), []string{"-addr", ln.Addr().String()}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assertTranscript(t, "address-in-use", "error: "+explain(err)+"\n")
}
