package main

// The robustness suite: each test attacks the real server over loopback, then
// checks that it still answers a fresh client. Small timeouts keep it fast.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
	"golang.org/x/net/netutil"
)

func TestServerSurvivesHundredsOfClientsResettingMidStream(t *testing.T) {
	for _, mode := range []string{"concurrent", "sequential"} {
		t.Run(mode, func(t *testing.T) {
			args := []string{"-addr", "127.0.0.1:0", "-idle-timeout", "1s"}
			if mode == "sequential" {
				args = append(args, "-sequential")
			}
			srv := startServer(t, args...)

			// 200 clients, 8 at a time: each sends half a line, or a
			// line whose reply it never reads, then resets the
			// connection (linger 0 makes Close send RST, not FIN).
			var wg sync.WaitGroup
			work := make(chan int)
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range work {
						conn, err := net.DialTimeout("tcp", srv.addr, wait)
						if err != nil {
							t.Errorf("client %d: %v", i, err)
							continue
						}
						conn.SetDeadline(time.Now().Add(wait))
						fmt.Fprintf(conn, "client %d says half a li", i)
						if i%2 == 0 {
							fmt.Fprintf(conn, "ne\n")
						}
						conn.(*net.TCPConn).SetLinger(0)
						conn.Close()
					}
				}()
			}
			for i := 0; i < 200; i++ {
				work <- i
			}
			close(work)
			wg.Wait()

			// The fresh client was accepted after all 200, so once it
			// has left, no new connection can start a handler.
			assertFreshClientIsServed(t, srv.addr)

			// No goroutine outlives its client: with the server still
			// running, none is left serving a connection: none is in
			// handle, and none that Serve started is left, begun or
			// not (the Go scheduler may run the fresh client's goroutine
			// before one it made earlier, which has yet to call handle).
			handling := regexp.MustCompile(`08-socketserver\.\(\*Server\)\.handle\(|created by github\.com/socketsteps/socketsteps/08-socketserver\.\(\*Server\)\.Serve in `)
			deadline := time.Now().Add(wait)
			for len(serverGoroutines(handling)) > 0 && time.Now().Before(deadline) {
				runtime.Gosched()
			}
			assert.Empty(t, serverGoroutines(handling), "goroutines still serving a client after the resets")
		})
	}
}

func TestFloodingClientThatNeverReadsDoesNotStallOthers(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0", "-idle-timeout", "300ms")
	flood := startFlood(t, srv.addr)

	// While the flooder's replies pile up unread, another client is
	// served at once.
	start := time.Now()
	assertFreshClientIsServed(t, srv.addr)
	assert.Less(t, time.Since(start), 2*time.Second, "the other client should not wait for the flooder")

	// The server's write to the flooder blocks, its deadline passes, and
	// the flooder is cut off long before its 64 MB are sent.
	result := receive(t, flood)
	assert.Error(t, result.err, "the flooder should have been cut off")
	assert.Less(t, result.sent, int64(64<<20))
	assertFreshClientIsServed(t, srv.addr)
}

func TestSequentialServerCutsOffAFlooderThenServesTheNextClient(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0", "-idle-timeout", "300ms", "-sequential")
	flood := startFlood(t, srv.addr)
	waitForLine(t, srv.out, "connected") // the flooder holds the only slot

	// The next client waits in the backlog until the write deadline cuts
	// the flooder off, then is served.
	assertFreshClientIsServed(t, srv.addr)
	result := receive(t, flood)
	assert.Error(t, result.err, "the flooder should have been cut off")
	assert.Less(t, result.sent, int64(64<<20))
}

func TestLimitListenerConnectionsHideCloseWrite(t *testing.T) {
	// Why the Server counts its own slots instead of using
	// netutil.LimitListener: the connections that one returns wrap the
	// *net.TCPConn, and the wrapper has no CloseWrite for a clean close.
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	limited := netutil.LimitListener(ln, 1)
	defer limited.Close()
	dial(t, ln.Addr().String())
	conn, err := limited.Accept()
	require.NoError(t, err)
	defer conn.Close()
	_, ok := conn.(interface{ CloseWrite() error })
	assert.False(t, ok, "LimitListener's connections now offer CloseWrite: the README's reason is gone")
}

// The deadlines move only when they pass (see serverConn): a client that
// talks through several idle timeouts is served throughout, and once
// silent it is closed no sooner than -idle-timeout after its last line.
func TestATalkingClientOutlivesTheIdleTimeoutAndIsClosedOnceSilent(t *testing.T) {
	const idle = 400 * time.Millisecond
	srv := startServer(t, "-addr", "127.0.0.1:0", "-idle-timeout", idle.String())
	conn, replies := dialLines(t, srv.addr)
	var last time.Time
	for begin := time.Now(); time.Since(begin) < 3*idle; {
		time.Sleep(idle / 8) // a line now and then: never idle
		last = time.Now()
		assert.Equal(t, "STILL HERE", askLine(t, conn, replies, "still here"))
	}
	rest, err := io.ReadAll(replies) // until the server closes
	require.NoError(t, err, "closed with FIN, not reset")
	assert.Equal(t, "bye: idle for 400ms, closing\n", string(rest))
	assert.GreaterOrEqual(t, time.Since(last), idle, "closed only after -idle-timeout of silence")
}

func TestSilentClientIsToldAndClosedAfterIdleTimeout(t *testing.T) {
	t.Run("upper", func(t *testing.T) {
		srv := startServer(t, "-addr", "127.0.0.1:0", "-idle-timeout", "100ms")
		conn := dial(t, srv.addr)
		got, err := io.ReadAll(conn)
		require.NoError(t, err, "closed with FIN, not reset")
		assert.Equal(t, "bye: idle for 100ms, closing\n", string(got))
		assertFreshClientIsServed(t, srv.addr)
	})
	t.Run("cmd", func(t *testing.T) {
		srv := startServer(t, "-addr", "127.0.0.1:0", "-idle-timeout", "100ms", "-handler", "cmd")
		conn := dial(t, srv.addr)
		got, err := readFrame(conn)
		require.NoError(t, err)
		assert.Equal(t, "bye: idle for 100ms, closing\n", string(got))
		_, err = readFrame(conn)
		assert.ErrorIs(t, err, io.EOF, "then a clean end of stream")
		// And a fresh client is still answered.
		fresh, replies := dialFrames(t, srv.addr)
		assert.NotEmpty(t, askFrame(t, fresh, replies, "hostname"))
	})
}

func TestClientsBeyondMaxConnsWaitInTheBacklog(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0", "-max-conns", "2")
	first, firstReplies := dialLines(t, srv.addr)
	assert.Equal(t, "ONE", askLine(t, first, firstReplies, "one"))
	second, secondReplies := dialLines(t, srv.addr)
	assert.Equal(t, "TWO", askLine(t, second, secondReplies, "two"))

	// Both slots are taken: the third connection is complete (the
	// kernel accepted it into the backlog) but nobody reads it yet.
	third, thirdReplies := dialLines(t, srv.addr)
	_, err := io.WriteString(third, "three\n")
	require.NoError(t, err)
	assertNothingArrives(t, third, thirdReplies)

	// When one client leaves, the waiting one is served.
	first.Close()
	require.NoError(t, third.SetReadDeadline(time.Now().Add(wait)))
	reply, err := thirdReplies.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "THREE\n", reply)
}

func TestShutdownSendsEveryClientItsFinalLineAndCleanEOF(t *testing.T) {
	t.Run("upper", func(t *testing.T) {
		srv := startServer(t, "-addr", "127.0.0.1:0")
		var conns []net.Conn
		for i := 0; i < 5; i++ {
			conn, replies := dialLines(t, srv.addr)
			// Mid-conversation: each client has had a reply and
			// waits for the next.
			assert.Equal(t, fmt.Sprint("LINE ", i), askLine(t, conn, replies, fmt.Sprint("line ", i)))
			conns = append(conns, readerConn{conn, replies})
		}
		srv.stop()
		for _, conn := range conns {
			rest, err := io.ReadAll(conn)
			require.NoError(t, err, "a clean end of stream, not a reset")
			assert.Equal(t, "bye: server shutting down\n", string(rest))
			conn.Close()
		}
		require.NoError(t, srv.wait(t))
		assert.Contains(t, srv.out.String(), "shutting down\n")
		assert.True(t, strings.HasSuffix(srv.out.String(), "stopped\n"))
	})
	t.Run("cmd", func(t *testing.T) {
		srv := startServer(t, "-addr", "127.0.0.1:0", "-handler", "cmd")
		var conns []net.Conn
		for i := 0; i < 3; i++ {
			conn, replies := dialFrames(t, srv.addr)
			assert.NotEmpty(t, askFrame(t, conn, replies, "hostname"))
			conns = append(conns, readerConn{conn, replies})
		}
		srv.stop()
		for _, conn := range conns {
			bye, err := readFrame(conn)
			require.NoError(t, err)
			assert.Equal(t, "bye: server shutting down\n", string(bye))
			_, err = readFrame(conn)
			assert.ErrorIs(t, err, io.EOF, "then a clean end of stream")
			conn.Close()
		}
		require.NoError(t, srv.wait(t))
	})
	t.Run("sequential", func(t *testing.T) {
		srv := startServer(t, "-addr", "127.0.0.1:0", "-sequential")
		conn, replies := dialLines(t, srv.addr)
		assert.Equal(t, "HI", askLine(t, conn, replies, "hi"))
		// A second client waits in the backlog, never accepted.
		waiting := dial(t, srv.addr)
		_, err := io.WriteString(waiting, "anyone?\n")
		require.NoError(t, err)

		srv.stop()
		rest, err := io.ReadAll(readerConn{conn, replies})
		require.NoError(t, err)
		assert.Equal(t, "bye: server shutting down\n", string(rest))
		conn.Close()
		require.NoError(t, srv.wait(t))

		// The kernel drops the waiting connection with the listener:
		// no farewell, and no reply.
		got, _ := io.ReadAll(waiting)
		assert.Empty(t, string(got), "a client nobody accepted gets nothing")
		require.NoError(t, srv.wait(t))
	})
}

func TestShutdownLosesNoReplyTheServerAlreadyProduced(t *testing.T) {
	for _, mode := range []string{"concurrent", "sequential"} {
		t.Run(mode, func(t *testing.T) {
			args := []string{"-addr", "127.0.0.1:0"}
			clients := 5
			if mode == "sequential" {
				args = append(args, "-sequential")
				clients = 1
			}
			srv := startServer(t, args...)
			var conns []net.Conn
			for i := 0; i < clients; i++ {
				conn, replies := dialLines(t, srv.addr)
				// The server has produced this reply once its first
				// byte arrives; the rest is in flight at the stop.
				_, err := io.WriteString(conn, "answered\n")
				require.NoError(t, err)
				first, err := replies.ReadByte()
				require.NoError(t, err)
				require.Equal(t, byte('A'), first)
				// This line goes out just before the stop: the server
				// may not have read it, and then owes it no reply.
				_, err = io.WriteString(conn, "late\n")
				require.NoError(t, err)
				conns = append(conns, readerConn{conn, replies})
			}
			srv.stop()
			for _, conn := range conns {
				rest, err := io.ReadAll(conn)
				require.NoError(t, err, "a clean end of stream, not a reset")
				// A reply that was produced arrives whole, before the
				// final line; the late one whole or not at all.
				assert.Contains(t, []string{
					"NSWERED\nbye: server shutting down\n",
					"NSWERED\nLATE\nbye: server shutting down\n",
				}, string(rest))
				conn.Close()
			}
			require.NoError(t, srv.wait(t))
		})
	}
}

func TestShutdownWaitsNoLongerThanGrace(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0", "-grace", "100ms")
	// This client sends lines and never reads the replies, until its
	// own writes stall: then every buffer on the way is full, and the
	// server's handler is stuck in a Write that -idle-timeout (2m here)
	// would end much later than -grace.
	// A write that stalls could also mean a server that is merely slow,
	// so only three stalls in a row, with no byte taken in between, count.
	conn := dial(t, srv.addr)
	line := append(bytes.Repeat([]byte("stuck "), 170), '\n')
	for stalls := 0; stalls < 3; {
		require.NoError(t, conn.SetWriteDeadline(time.Now().Add(quiet/2)))
		n, err := conn.Write(line)
		switch {
		case isTimeout(err) && n == 0:
			stalls++
		case isTimeout(err) || err == nil:
			stalls = 0
		default:
			require.NoError(t, err)
		}
	}
	srv.stop()
	require.NoError(t, srv.wait(t), "giving up after -grace is still a clean exit")
	assert.Contains(t, srv.out.String(), "grace period of 100ms over: closed the remaining connections")
}

// ourCode matches a stack frame in the program's code. In a test binary,
// a stack names package main by its import path, ".../08-socketserver".
const ourCode = `08-socketserver\.(\(\*Server\)|\(\*serverConn\)|\(\*cmdHandler\)|upper|run\(|runClient|serveUntilDone|closeGracefully)`

func TestNoGoroutineLeaksAfterShutdown(t *testing.T) {
	for _, handler := range []string{"upper", "cmd"} {
		srv := startServer(t, "-addr", "127.0.0.1:0", "-handler", handler)
		for i := 0; i < 3; i++ {
			hangUpOnEOF(dial(t, srv.addr)) // connected and silent
		}
		for i := 0; i < 3; i++ {
			waitForLine(t, srv.out, "connected")
		}
		// The check below must be able to see the server's goroutines.
		require.NotEmpty(t, serverGoroutines(regexp.MustCompile(ourCode)), "the running server's goroutines are not recognised")
		srv.stop()
		require.NoError(t, srv.wait(t))
	}

	// Goroutines end a little after the function that stopped them
	// returned, so poll until none of ours is left.
	ours := regexp.MustCompile(ourCode)
	deadline := time.Now().Add(wait)
	for {
		leaked := serverGoroutines(ours)
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still running after shutdown:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond) // polling, not synchronising: there is nothing to wait on
	}
}

func TestLogNobodyReadsCostsLinesNeverServiceOrShutdown(t *testing.T) {
	// stdout passes the first line ("listening on") and then blocks, as a
	// pipe into a paused "| less" does once its buffer is full.
	out := newStuckStdout(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-handler", "cmd", "-grace", "200ms"}, nil, out, io.Discard)
	}()
	addr, ok := strings.CutPrefix(out.lines.next(t), "listening on ")
	require.True(t, ok)

	// Every refusal is a log line: 2,000 of them, more than the log's
	// queue holds, and every one is answered.
	conn, replies := dialFrames(t, addr)
	for batch := 0; batch < 20; batch++ {
		_, err := io.WriteString(conn, strings.Repeat("nope\n", 100))
		require.NoError(t, err)
		for i := 0; i < 100; i++ {
			reply, err := readFrame(replies)
			require.NoError(t, err, "reply %d", batch*100+i)
			require.True(t, strings.HasPrefix(string(reply), "refused: "), "got %q", reply)
		}
	}
	// Other clients are served too.
	for i := 0; i < 5; i++ {
		conn, replies := dialFrames(t, addr)
		assert.True(t, strings.HasPrefix(askFrame(t, conn, replies, "nope"), "refused: "))
		conn.Close()
	}

	// Ctrl+C still stops the server: its last log lines wait for
	// stdout no longer than -grace.
	cancel()
	require.NoError(t, receive(t, done))

	// When stdout moves again, the log says how many lines it lost.
	out.release()
	line := waitForLine(t, out.lines, "lines dropped")
	assert.Regexp(t, `^log: [1-9][0-9]* lines dropped while the log was not being read$`, line)
}

func TestLogRepeatsAtMost32BytesOfWhatAClientSent(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0", "-handler", "cmd")
	conn, replies := dialFrames(t, srv.addr)
	// 4,000 bytes that %q would write as 16,000.
	long := strings.Repeat("\xff", 4000)
	assert.True(t, strings.HasPrefix(askFrame(t, conn, replies, long), "refused: "))
	line := waitForLine(t, srv.out, "refused")
	assert.Equal(t, `client `+conn.LocalAddr().String()+`: refused "`+strings.Repeat(`\xff`, 32)+`"… (4000 bytes)`, line)
}

func TestProgramThatPrintsPastTheCapIsKilledAtOnce(t *testing.T) {
	yes, err := exec.LookPath("yes")
	if err != nil {
		t.Skip("no yes program here (Windows has none)")
	}
	// yes prints "y" lines until it is killed. The deadline is only a
	// backstop: if runProgram returns because it passed, the program ran
	// on after its output passed the cap, which is the bug.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	out, err := runProgram(ctx, yes, nil)
	require.NoError(t, ctx.Err(), "yes ran until the test's deadline: it should have been killed when its output passed the cap")
	assert.ErrorIs(t, err, errTooMuchOutput)
	assert.Len(t, out, maxOutput)
}

func TestCommandThatPrintsTooMuchIsStoppedAndSaysSo(t *testing.T) {
	chatty := func(context.Context, string, []string) ([]byte, error) {
		return []byte("y\ny"), errTooMuchOutput
	}
	addr := serveCmd(t, chatty)
	conn, replies := dialFrames(t, addr)
	assert.Equal(t, "y\ny\nerror: echo printed more than 65536 bytes and was stopped\n", askFrame(t, conn, replies, "echo y"))
}

func TestDateRefusesFieldWidthsThatOnlyAmplify(t *testing.T) {
	rec := &recorder{out: []byte("ran\n")}
	addr := serveCmd(t, rec.run)
	conn, replies := dialFrames(t, addr)
	for _, line := range []string{
		"date +%2147483647c", // two gigabytes of padding
		"date +%-10d",        // a flag, then a width
		"date +%_5H",
		"date +%0100Y", // "0" is a flag; "100" is the width
		"date -u +x%%%9s",
		"date +%Y +%3m",
	} {
		assert.Equal(t, "refused: date +FORMAT takes no field width (as in %10c): a width only makes the output longer\n",
			askFrame(t, conn, replies, line), line)
	}
	assert.Empty(t, rec.calls(), "a refused date must never run")

	// Formats without a width still run.
	for _, line := range []string{"date", "date -u", "date +%Y-%m-%d", "date +%%10", "date +%-d", "date +%0d", "date -u +%s"} {
		assert.Equal(t, "ran\n", askFrame(t, conn, replies, line), line)
	}
}

func TestProgramsPastMaxProgramsAreAnsweredBusy(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	// The first program runs until the test releases it.
	slow := func(ctx context.Context, name string, _ []string) ([]byte, error) {
		started <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return []byte(name + " done\n"), nil
	}
	addr := serveHandler(t, newCmdHandler(slow, wait, 1, nil), false)

	first := dial(t, addr)
	_, err := io.WriteString(first, "date\n")
	require.NoError(t, err)
	receive(t, started)

	// The one slot is taken: the next command is answered at once.
	second, replies := dialFrames(t, addr)
	assert.Equal(t, "busy: the server runs at most 1 programs at once; try again in a moment\n", askFrame(t, second, replies, "uptime"))
	assert.Empty(t, started, "a busy answer runs nothing")
}

func TestTricklingClientIsClosedWhenALineTakesLongerThanMessageTimeout(t *testing.T) {
	// The idle timeout stays at its default of 2 minutes: a byte every
	// 20 ms keeps it from ever firing. Only the message clock can help.
	for _, mode := range []string{"upper", "sequential", "cmd"} {
		t.Run(mode, func(t *testing.T) {
			args := []string{"-addr", "127.0.0.1:0", "-message-timeout", "300ms"}
			switch mode {
			case "sequential":
				args = append(args, "-sequential")
			case "cmd":
				args = append(args, "-handler", "cmd")
			}
			srv := startServer(t, args...)
			conn := dial(t, srv.addr)
			stop := trickle(t, conn)

			if mode == "sequential" {
				// The trickler holds the only slot; the next client
				// waits in the backlog until the message clock frees it.
				waitForLine(t, srv.out, "connected")
				assertFreshClientIsServed(t, srv.addr)
			}
			var bye []byte
			var err error
			if mode == "cmd" {
				bye, err = readFrame(conn)
			} else {
				var line string
				line, err = bufio.NewReader(conn).ReadString('\n')
				bye = []byte(line)
			}
			require.NoError(t, err, "the trickler should have been told and closed")
			assert.Equal(t, "bye: a line took longer than 300ms to arrive, closing\n", string(bye))
			stop()
			switch mode {
			case "upper":
				assertFreshClientIsServed(t, srv.addr)
			case "cmd":
				fresh, replies := dialFrames(t, srv.addr)
				assert.True(t, strings.HasPrefix(askFrame(t, fresh, replies, "nope"), "refused: "))
			}
		})
	}
}

func TestMessageClockStartsAtEachLinesFirstByte(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0", "-message-timeout", "200ms")
	conn, replies := dialLines(t, srv.addr)
	assert.Equal(t, "ONE", askLine(t, conn, replies, "one"))
	// A pause between lines, longer than -message-timeout, is the idle
	// timeout's business (2 minutes here): the next line is answered.
	// (This pause is the scenario, not a way to wait for something.)
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, "TWO", askLine(t, conn, replies, "two"))
}

func TestTricklingClientsFromOneAddressCannotTakeEverySlot(t *testing.T) {
	for _, handler := range []string{"upper", "cmd"} {
		t.Run(handler, func(t *testing.T) {
			well := secondLoopbackDialer(t)
			srv := startServer(t, "-addr", "127.0.0.1:0", "-handler", handler, "-max-conns", "4", "-max-conns-per-ip", "3")

			// Three connections from 127.0.0.1 are served and held open.
			for i := 0; i < 3; i++ {
				hangUpOnEOF(dial(t, srv.addr))
				waitForLine(t, srv.out, "connected")
			}
			// Five more from the same address are told why and closed,
			// and do not keep the fourth slot.
			for i := 0; i < 5; i++ {
				conn := dial(t, srv.addr)
				var got string
				if handler == "cmd" {
					bye, err := readFrame(conn)
					require.NoError(t, err)
					got = string(bye)
					_, err = readFrame(conn)
					assert.ErrorIs(t, err, io.EOF, "then a clean end of stream")
				} else {
					all, err := io.ReadAll(conn)
					require.NoError(t, err, "closed with FIN, not reset")
					got = string(all)
				}
				assert.Equal(t, "bye: too many connections from your address (limit 3), closing\n", got)
				assert.Regexp(t, `^client 127\.0\.0\.1:\d+ refused: too many connections from 127\.0\.0\.1 \(limit 3\)$`, waitForLine(t, srv.out, "too many"))
			}

			// A client from another address gets the last slot.
			conn, err := well.Dial("tcp", srv.addr)
			require.NoError(t, err)
			defer conn.Close()
			require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
			replies := bufio.NewReader(conn)
			if handler == "cmd" {
				assert.True(t, strings.HasPrefix(askFrame(t, conn, replies, "nope"), "refused: "))
			} else {
				assert.Equal(t, "WELL BEHAVED", askLine(t, conn, replies, "well behaved"))
			}
		})
	}
}

// The log's writer takes every line waiting in the queue in one Write:
// when clients come and go in a crowd, many lines cost one system call.
func TestTheLogWritesTheLinesWaitingTogetherInOneWrite(t *testing.T) {
	out := &recordingWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	q := newLogQueue(out)
	q.Write([]byte("first\n"))
	<-out.entered // the writer holds "first" while the next lines queue up
	q.Write([]byte("second\n"))
	q.Write([]byte("third\n"))
	close(out.release)
	require.True(t, q.close(time.Now().Add(wait)), "every line written")
	assert.Equal(t, []string{"first\n", "second\nthird\n"}, out.writes)
}

// recordingWriter records each Write; the first one waits for release.
type recordingWriter struct {
	entered chan struct{}
	release chan struct{}
	writes  []string
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	if len(w.writes) == 0 {
		w.entered <- struct{}{}
		<-w.release
	}
	w.writes = append(w.writes, string(p))
	return len(p), nil
}
