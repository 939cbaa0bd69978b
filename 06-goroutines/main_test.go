package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// wait bounds every blocking step of a test, so a broken server fails the
// test instead of hanging it.
const wait = 5 * time.Second

// greetingLine is what every client reads first.
const greetingLine = "welcome to 06-goroutines: every message you send comes back after OK..."

func TestPrintsTheAddressItReallyListensOn(t *testing.T) {
	srv := startServer(t)
	// Port 0 asks the kernel for any free port; the program must print
	// the one it got, or nobody could connect.
	assert.NotEqual(t, "0", portOf(t, srv.addr))
	dialGreeted(t, srv.addr)
}

func TestGreetsEachClientWithOneLine(t *testing.T) {
	srv := startServer(t)
	conn := dial(t, srv.addr)
	assert.Equal(t, greetingLine+"\n", readLine(t, conn))
	// The greeting is one line and nothing else: the server now waits
	// for the client. A short read deadline checks that nothing more
	// arrives (a longer wait would only slow the test).
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	n, err := conn.Read(make([]byte, 1))
	assert.Zero(t, n)
	assert.True(t, isTimeout(err), "want nothing after the greeting, got %v", err)
	assert.Equal(t, "client "+conn.LocalAddr().String()+" connected", srv.out.waitFor(t, "connected"))
}

func TestAnswersEachChunkWithOK(t *testing.T) {
	srv := startServer(t)
	conn := dialGreeted(t, srv.addr)
	// Lock-step: each message is one chunk on loopback, so each reply is
	// exactly "OK..." plus the message. readEcho also accepts a message
	// that the network split into several chunks.
	for _, msg := range []string{"hello\n", "second line\n", "no newline"} {
		send(t, conn, msg)
		readEcho(t, conn, msg)
	}
}

func TestByteAtATimeSenderGetsEveryByteBack(t *testing.T) {
	srv := startServer(t)
	conn := dialGreeted(t, srv.addr)
	// The server answers whatever one Read returned. A client that
	// sends a byte and waits gets that byte back on its own.
	for _, b := range "abc" {
		send(t, conn, string(b))
		got := make([]byte, len("OK...")+1)
		_, err := io.ReadFull(conn, got)
		require.NoError(t, err)
		assert.Equal(t, "OK..."+string(b), string(got))
	}
}

func TestAllClientsAreServedAtOnce(t *testing.T) {
	// All the clients come from 127.0.0.1, so the cap per address is
	// lifted (see TestTricklingClientsFromOneAddressCannotTakeEverySlot).
	srv := startServer(t, "-max-conns-per-ip", "0")
	// 300 clients connect and each is greeted while all the others are
	// still connected: no client waits for another to leave, which is
	// what 05-loop could not do.
	const clients = 300
	conns := make([]net.Conn, clients)
	for i := range conns {
		conns[i] = dialGreeted(t, srv.addr)
	}
	// Then every one of them, still all connected, gets its own answer.
	for i, conn := range conns {
		msg := fmt.Sprintf("client %d says hi\n", i)
		send(t, conn, msg)
		readEcho(t, conn, msg)
	}
	srv.out.waitForCount(t, "connected", clients)
}

func TestServerSurvivesHundredsOfClientsResettingMidStream(t *testing.T) {
	srv := startServer(t)
	steady := dialGreeted(t, srv.addr)

	// 200 clients connect, send half a message and abort: SetLinger(0)
	// makes Close send RST instead of FIN, as a crashed program or a
	// dropped network path would.
	const clients = 200
	for i := 0; i < clients; i++ {
		conn := dialGreeted(t, srv.addr).(*net.TCPConn)
		send(t, conn, "half a mess")
		require.NoError(t, conn.SetLinger(0))
		require.NoError(t, conn.Close())
		if i%50 == 0 {
			// Meanwhile, the client that behaves is served as usual.
			send(t, steady, "still there?\n")
			readEcho(t, steady, "still there?\n")
		}
	}
	// Each aborted client's goroutine ends: the server notices the reset
	// (or that the client had gone when it wrote the reply).
	srv.out.waitForCount(t, "reset the connection", clients)
	send(t, steady, "still there?\n")
	readEcho(t, steady, "still there?\n")
	// And no goroutine outlives its client: while the server runs on,
	// only the steady client's goroutine is left.
	assertHandlerGoroutines(t, 1)
	assertServesAFreshClient(t, srv.addr)
}

// assertHandlerGoroutines waits until exactly want goroutines are
// serving a client, and fails listing them if that does not happen.
func assertHandlerGoroutines(t testing.TB, want int) {
	t.Helper()
	var found []string
	deadline := time.Now().Add(wait)
	for {
		found = handlerStacks()
		if len(found) == want || time.Now().After(deadline) {
			break
		}
		runtime.Gosched()
	}
	assert.Len(t, found, want, "goroutines serving a client:\n%s", strings.Join(found, "\n\n"))
}

// handlerWaitsIn reports whether a goroutine serving a client is, right
// now, inside call (as stack traces name it) and parked there, waiting
// for its socket to be ready.
func handlerWaitsIn(call string) bool {
	for _, g := range handlerStacks() {
		if strings.Contains(g, call) && strings.Contains(g, "internal/poll.runtime_pollWait(") {
			return true
		}
	}
	return false
}

// handlerStacks returns the stack of every goroutine serving a client.
func handlerStacks() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "06-goroutines.(*server).handle(") {
			found = append(found, g)
		}
	}
	return found
}

func TestFloodingClientThatNeverReadsDoesNotStallOthers(t *testing.T) {
	srv := startServer(t, "-idle-timeout", "500ms")
	flooder := dialGreeted(t, srv.addr)

	// The flooder sends up to 64 MB and never reads a reply. Its writes
	// stop when the kernel buffers on both sides are full, because the
	// server does not read more than it can answer.
	type result struct {
		sent int
		err  error
	}
	flooded := make(chan result, 1)
	go func() {
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		sent := 0
		var err error
		for sent < 64<<20 && err == nil {
			var n int
			n, err = flooder.Write(chunk)
			sent += n
		}
		flooded <- result{sent, err}
	}()

	// Meanwhile, other clients come and go and are answered promptly.
	for i := 0; i < 5; i++ {
		conn := dialGreeted(t, srv.addr)
		require.NoError(t, conn.SetDeadline(time.Now().Add(time.Second)))
		send(t, conn, "am I stuck behind the flood?\n")
		readEcho(t, conn, "am I stuck behind the flood?\n")
		conn.Close()
	}

	// The server gives up on the flooder once a reply has waited
	// -idle-timeout to be written, and closes it. The flooder's writes
	// then fail long before 64 MB: the server never held the flood.
	var r result
	select {
	case r = <-flooded:
	case <-time.After(wait):
		t.Fatal("the flooding client was not cut off")
	}
	require.Error(t, r.err, "the flooder should be cut off")
	assert.Less(t, r.sent, 64<<20)
	assert.Contains(t, srv.out.waitFor(t, flooder.LocalAddr().String()+" stopped reading"), "closed")
	assertServesAFreshClient(t, srv.addr)
}

func TestSilentClientIsToldAndClosedAfterIdleTimeout(t *testing.T) {
	srv := startServer(t, "-idle-timeout", "100ms")
	conn := dialGreeted(t, srv.addr)

	rest, err := io.ReadAll(conn) // until the server closes
	require.NoError(t, err, "the server should close with FIN, not reset")
	assert.Equal(t, "bye: idle for 100ms, closing\n", string(rest))
	conn.Close() // a polite client closes when it reads the end
	assert.Equal(t, "client "+conn.LocalAddr().String()+" idle, closed", srv.out.waitFor(t, "idle"))
	assertServesAFreshClient(t, srv.addr)
}

func TestClientsBeyondMaxConnsWaitOrAreToldFull(t *testing.T) {
	srv := startServer(t, "-max-conns", "2")
	first := dialGreeted(t, srv.addr)
	dialGreeted(t, srv.addr)

	// The third connection succeeds (the kernel completes it into the
	// backlog) but the server does not accept it yet, so no greeting
	// comes. A short deadline is enough to see that nothing arrives.
	third := dial(t, srv.addr)
	require.NoError(t, third.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	_, err := third.Read(make([]byte, 1))
	require.True(t, isTimeout(err), "the third client should wait, got %v", err)

	// When one of the two leaves, the waiting client is accepted.
	require.NoError(t, first.Close())
	require.NoError(t, third.SetReadDeadline(time.Now().Add(wait)))
	assert.Equal(t, greetingLine+"\n", readLine(t, third))
	send(t, third, "finally\n")
	readEcho(t, third, "finally\n")
}

func TestTricklingClientsFromOneAddressCannotTakeEverySlot(t *testing.T) {
	second := secondLoopbackAddress(t)
	srv := startServer(t, "-max-conns", "10", "-max-conns-per-ip", "5")

	// The attacker, on 127.0.0.1, opens as many connections as the
	// server has slots, and keeps each one alive by sending a byte now and
	// then (once here: the idle timeout is minutes away). Five are served;
	// from the sixth on, each is told why and closed, with a FIN.
	for i := 0; i < 10; i++ {
		conn := dial(t, srv.addr)
		if i < 5 {
			require.Equal(t, greetingLine+"\n", readLine(t, conn), "trickler %d", i+1)
			send(t, conn, ".")
			readEcho(t, conn, ".")
			continue
		}
		rest, err := io.ReadAll(conn)
		require.NoError(t, err, "connection %d: want a clean end of stream (FIN), not a reset", i+1)
		assert.Equal(t, "bye: too many connections from your address (limit 5), closing\n", string(rest), "connection %d", i+1)
		conn.Close()
		assert.Equal(t, "client "+conn.LocalAddr().String()+" turned away: too many connections from its address (limit 5)",
			srv.out.waitFor(t, "turned away"))
	}

	// The five it holds are all one address may have: five slots of ten
	// are still free, and a well-behaved client from another address
	// gets every one of them. (The turned-away connections gave their
	// slots back when they closed.)
	for i := 0; i < 5; i++ {
		conn := dialFrom(t, second, srv.addr)
		require.Equal(t, greetingLine+"\n", readLine(t, conn), "client %d from %s", i+1, second)
		send(t, conn, "served?\n")
		readEcho(t, conn, "served?\n")
	}
}

func TestStdoutThatNobodyReadsCostsLogLinesNotServiceOrShutdown(t *testing.T) {
	// stdout lets the first line through (the address), then blocks, as
	// a pipe does when its reader stops: a paused `| less`, a stuck log
	// shipper.
	out := newLines()
	stdout := &stuckWriter{out: out, pass: 1, entered: make(chan struct{}, 1), release: make(chan struct{})}
	const grace = 300 * time.Millisecond
	srv := startServerWriting(t, stdout, out, "-grace", grace.String())
	t.Cleanup(stdout.unblock) // runs before startServer's cleanup

	// 600 clients, one after another, are each greeted and answered.
	// Each is 2 lines of log: far more than the log's queue holds.
	const clients = 600
	for i := 0; i < clients; i++ {
		conn := dialGreeted(t, srv.addr)
		send(t, conn, "still served?\n")
		readEcho(t, conn, "still served?\n")
		conn.Close()
	}
	assertHandlerGoroutines(t, 0) // every client has been logged as gone

	// Ctrl+C still stops the server within -grace (the margin is for a
	// busy machine's timers), although the log is still stuck.
	start := time.Now()
	srv.stop()
	require.NoError(t, srv.wait(t))
	assert.Less(t, time.Since(start), grace+500*time.Millisecond, "run should return within -grace")

	// Once stdout is read again, the log says how many lines it dropped,
	// and every line the server logged is either written or counted.
	stdout.unblock()
	logged := 1 + 2*clients + 2 // listening; connected and left each; shutting down, stopped
	dropped := regexp.MustCompile(`^log: (\d+) lines dropped while the log was not being read$`)
	what := fmt.Sprintf("%d lines written or counted as dropped, in one count", logged)
	out.waitUntil(t, what, func(got []string) bool {
		n, counts := 0, 0
		for _, line := range got {
			if m := dropped.FindStringSubmatch(line); m != nil {
				d, _ := strconv.Atoi(m[1])
				n += d
				counts++
			} else {
				n++
			}
		}
		return n == logged && counts == 1
	})
}

func TestWhenNobodyReadsTheLogItCountsDroppedLinesAndSaysSoFirst(t *testing.T) {
	out := newLines()
	stdout := &stuckWriter{out: out, entered: make(chan struct{}, 1), release: make(chan struct{})}
	t.Cleanup(stdout.unblock)
	q := newLogQueue(stdout)

	// The first line is taken off the queue and its write blocks. Then
	// the queue fills (1024 lines), and five more lines are dropped.
	fmt.Fprintln(q, "line 0")
	select {
	case <-stdout.entered:
	case <-time.After(wait):
		t.Fatal("the log never tried to write its first line")
	}
	for i := 1; i <= logQueueLines+5; i++ {
		fmt.Fprintf(q, "line %d\n", i) // returns at once, written or not
	}
	// close gives up on the stuck stdout at its deadline.
	start := time.Now()
	q.close(time.Now().Add(100 * time.Millisecond))
	assert.Less(t, time.Since(start), time.Second)

	stdout.unblock()
	select {
	case <-q.done:
	case <-time.After(wait):
		t.Fatal("the log was not written out once stdout moved")
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, got, 1+1+logQueueLines)
	assert.Equal(t, "line 0", got[0])
	assert.Equal(t, "log: 5 lines dropped while the log was not being read", got[1])
	assert.Equal(t, "line 1", got[2])
	assert.Equal(t, fmt.Sprintf("line %d", logQueueLines), got[len(got)-1])
}

func TestShutdownSendsEveryClientItsFinalLineAndCleanEOF(t *testing.T) {
	srv := startServer(t)
	const clients = 20
	conns := make([]net.Conn, clients)
	for i := range conns {
		conns[i] = dialGreeted(t, srv.addr)
	}
	// Some clients are mid-conversation: one message answered, and a
	// second one sent just before the stop, which the server may or may
	// not have read yet.
	for _, conn := range conns[:clients/2] {
		send(t, conn, "one\n")
		readEcho(t, conn, "one\n")
		send(t, conn, "two\n")
	}
	srv.stop() // what Ctrl+C does

	for i, conn := range conns {
		rest, err := io.ReadAll(conn)
		require.NoError(t, err, "client %d: want a clean end of stream (FIN), not a reset", i)
		conn.Close() // a polite client closes when it reads the end
		// A reply the server produced arrives before the goodbye.
		got := strings.TrimPrefix(string(rest), "OK...two\n")
		assert.Equal(t, "bye: server shutting down\n", got, "client %d", i)
	}
	require.NoError(t, srv.wait(t), "shutdown is not an error")
	assert.Equal(t, clients, srv.out.count("closed at shutdown"))
	assert.Contains(t, srv.out.String(), "stopped\n")
}

func TestShutdownClosesClientsThatDoNotLeaveWithinTheGracePeriod(t *testing.T) {
	srv := startServer(t, "-grace", "200ms")
	conn := dialGreeted(t, srv.addr)
	// This client never reads, so its reply (and later the goodbye) can
	// not be written. It sends until the server is stuck in a Write,
	// waiting for room that never comes.
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	deadline := time.Now().Add(wait)
	for !handlerWaitsIn("06-goroutines.(*server).send(") {
		require.True(t, time.Now().Before(deadline), "the server never got stuck writing a reply")
		require.NoError(t, conn.SetWriteDeadline(time.Now().Add(50*time.Millisecond)))
		if _, err := conn.Write(chunk); err != nil {
			require.True(t, isTimeout(err), "want the write to block, got %v", err)
		}
	}
	srv.stop()
	require.NoError(t, srv.wait(t))
	assert.Contains(t, srv.out.String(), "grace period over, closing 1 connections")
	assert.Contains(t, srv.out.String(), "client "+conn.LocalAddr().String()+" cut off at shutdown")
}

func TestNoGoroutineLeaksAfterShutdown(t *testing.T) {
	// A short grace period: these clients never close their end, so the
	// server's goodbyes would otherwise wait a second for them.
	srv := startServer(t, "-grace", "100ms")
	// Clients in every state: greeted and silent, mid-message, having
	// half-closed, one that does not read, one not yet accepted.
	dialGreeted(t, srv.addr)
	mid := dialGreeted(t, srv.addr)
	send(t, mid, "a message without its end")
	readEcho(t, mid, "a message without its end")
	half := dialGreeted(t, srv.addr).(*net.TCPConn)
	require.NoError(t, half.CloseWrite())
	srv.out.waitFor(t, half.LocalAddr().String()+" left")
	deaf := dialGreeted(t, srv.addr)
	send(t, deaf, strings.Repeat("y", 100_000))
	dial(t, srv.addr)

	srv.stop()
	require.NoError(t, srv.wait(t))
	// The clients are all still connected: only the server's own
	// goroutines could have ended them.
	assertNoGoroutinesLeft(t)
}

func TestStopWithNoClientsExitsCleanly(t *testing.T) {
	srv := startServer(t)
	srv.stop()
	require.NoError(t, srv.wait(t))
	assert.Equal(t, []string{"shutting down", "stopped"}, []string{srv.out.next(t), srv.out.next(t)})
}

func TestBusyAddressFailsWithAddressInUse(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	defer ln.Close()

	err = run(context.Background(), []string{"-addr", ln.Addr().String()}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, wsaEADDRINUSE), "want EADDRINUSE, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#eaddrinuse)")
}

func TestBadFlagsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-no-such-flag"},
		{"-max-conns", "0"},
		{"-max-conns-per-ip", "-1"},
		{"-idle-timeout", "0s"},
		{"-grace", "-1s"},
		{"extra"},
	} {
		var stderr bytes.Buffer
		err := run(context.Background(), args, nil, io.Discard, &stderr)
		assert.ErrorIs(t, err, errUsage, "%q", args)
		assert.Contains(t, stderr.String(), "-max-conns", "%q should print the usage", args)
	}
}

func TestClientModeSendsLinesAndPrintsReplies(t *testing.T) {
	srv := startServer(t)
	var out bytes.Buffer
	err := runWithTimeout(t, []string{"-client", "-addr", srv.addr}, strings.NewReader("hello\nworld\n"), &out)
	require.NoError(t, err)
	assert.Equal(t, greetingLine+"\nOK...hello\nOK...world\n", out.String())
}

func TestClientReportsConnectionRefused(t *testing.T) {
	addr := closedPort(t)
	err := runWithTimeout(t, []string{"-client", "-addr", addr}, strings.NewReader("hi\n"), io.Discard)
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, wsaECONNREFUSED), "want ECONNREFUSED, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#econnrefused)")
}

func TestWorksWithNetcat(t *testing.T) {
	nc := lookTool(t, "nc")
	srv := startServer(t)
	host, port, _ := net.SplitHostPort(srv.addr)

	// nc sends its standard input, half-closes (-N) when it ends, and
	// prints what comes back until the server closes.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, nc, "-N", host, port)
	cmd.Stdin = strings.NewReader("hi from nc\n")
	got, err := cmd.Output()
	require.NoError(t, err)
	assert.Equal(t, greetingLine+"\nOK...hi from nc\n", string(got))
}

func TestWorksWithTelnet(t *testing.T) {
	telnet := lookTool(t, "telnet")
	srv := startServer(t)
	host, port, _ := net.SplitHostPort(srv.addr)

	// telnet quits as soon as its input ends, so the input stays open
	// until the server has answered; then Ctrl+C closes the server.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	stdin, feed := io.Pipe()
	cmd := exec.CommandContext(ctx, telnet, host, port)
	cmd.Stdin = stdin
	got := newLines()
	cmd.Stdout = got
	require.NoError(t, cmd.Start())
	got.waitFor(t, greetingLine)
	_, err := io.WriteString(feed, "hi from telnet\n")
	require.NoError(t, err)
	// telnet turns the newline into the network's "\r\n" (with a NUL
	// after the "\r" in this mode), so only the text itself is compared.
	got.waitFor(t, "OK...hi from telnet")
	srv.stop()
	require.NoError(t, srv.wait(t))
	got.waitFor(t, "bye: server shutting down")
	feed.Close()
	cmd.Wait() // telnet exits 1 when the server closes; its output is what counts
}

// The README shows what a learner sees; these tests produce the same
// sessions and compare them line by line, ports aside. With one client
// the server's log has a fixed order.

func TestReadmeServerTranscript(t *testing.T) {
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
	require.NoError(t, runWithTimeout(t, []string{"-client", "-addr", srv.addr}, strings.NewReader("hello\nhow are you?\n"), &out))
	assertTranscript(t, "client", out.String())
}

func TestReadmeIdleTranscript(t *testing.T) {
	nc := lookTool(t, "nc")
	srv := startServer(t, "-idle-timeout", "100ms")
	host, port, _ := net.SplitHostPort(srv.addr)

	// nc keeps running while its input is open, as it does in a
	// terminal; once the server has said goodbye, the input is closed.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	stdin, feed := io.Pipe()
	cmd := exec.CommandContext(ctx, nc, host, port)
	cmd.Stdin = stdin
	got := newLines()
	cmd.Stdout = got
	require.NoError(t, cmd.Start())
	got.waitFor(t, "bye:")
	feed.Close()
	require.NoError(t, cmd.Wait())
	assertTranscript(t, "idle", got.String())
}

func TestReadmeAddressInUseTranscript(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	defer ln.Close()
	err = run(context.Background(), []string{"-addr", ln.Addr().String()}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	got := "error: " + explain(err) + "\n"
	if runtime.GOOS == "windows" {
		// Windows words the system's part of the message its own way
		// ("Only one usage of each socket address ... is normally
		// permitted."), where the README shows Linux's. Put Linux's
		// words in its place, so that the rest of the line is checked.
		var errno syscall.Errno
		require.True(t, errors.As(err, &errno), "want an errno inside %v", err)
		require.Equal(t, wsaEADDRINUSE, errno)
		got = strings.Replace(got, errno.Error(), "address already in use", 1)
	}
	assertTranscript(t, "address-in-use", got)
}

// ---- helpers ----

// testServer is the program running in this test process, as `go run`
// would run it, with its log captured line by line.
type testServer struct {
	addr string
	out  *lines
	stop context.CancelFunc
	done chan error
}

// startServer runs the program on a free port with the extra flags in
// args, and waits for it to print the address it listens on. The server
// is stopped, and waited for, when the test ends.
func startServer(t testing.TB, args ...string) *testServer {
	t.Helper()
	out := newLines()
	return startServerWriting(t, out, out, args...)
}

// startServerWriting is startServer with the program's stdout given:
// stdout must pass what it is written on to out, at least the first line.
func startServerWriting(t testing.TB, stdout io.Writer, out *lines, args ...string) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &testServer{out: out, stop: cancel, done: make(chan error, 1)}
	args = append([]string{"-addr", "127.0.0.1:0"}, args...)
	go func() { srv.done <- run(ctx, args, nil, stdout, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-srv.done:
		case <-time.After(2 * wait):
			t.Error("server did not stop after cancel")
		}
	})
	first := srv.out.next(t)
	addr, ok := strings.CutPrefix(first, "listening on ")
	require.True(t, ok, "first line should give the address, got %q", first)
	srv.addr = addr
	return srv
}

// stuckWriter passes its first pass lines on to out, then blocks every
// Write until unblock is called. It tells entered when a Write blocks.
// The program writes to it from one goroutine at a time.
type stuckWriter struct {
	out     *lines
	pass    int
	entered chan struct{} // capacity 1
	release chan struct{}
	once    sync.Once
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	if w.pass > 0 {
		w.pass--
		return w.out.Write(p)
	}
	select {
	case w.entered <- struct{}{}:
	default:
	}
	<-w.release
	return w.out.Write(p)
}

func (w *stuckWriter) unblock() { w.once.Do(func() { close(w.release) }) }

// secondLoopbackAddress returns 127.0.0.2, for a client that must not
// share 127.0.0.1 with the others, or skips the test where a program
// cannot use it.
func secondLoopbackAddress(t testing.TB) net.IP {
	t.Helper()
	ip := net.IPv4(127, 0, 0, 2)
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: ip})
	if err != nil {
		t.Skipf("cannot use a second loopback address, 127.0.0.2 (macOS has only 127.0.0.1 unless an alias is added): %v", err)
	}
	ln.Close()
	return ip
}

// dialFrom is dial from the local address ip.
func dialFrom(t testing.TB, ip net.IP, addr string) net.Conn {
	t.Helper()
	dialer := net.Dialer{Timeout: wait, LocalAddr: &net.TCPAddr{IP: ip}}
	conn, err := dialer.Dial("tcp", addr)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// wait returns the program's result, failing the test if it runs on.
func (s *testServer) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // let Cleanup see it too
		return err
	case <-time.After(2 * wait):
		t.Fatal("server did not return")
		return nil
	}
}

// lines is an io.Writer that keeps each complete line, so a test can wait
// for the next line, or for a line that says something, instead of
// sleeping. It never blocks the program that writes to it.
type lines struct {
	mu      sync.Mutex
	all     strings.Builder
	part    string
	got     []string
	read    int           // lines already returned by next and waitFor
	changed chan struct{} // closed and replaced when a line arrives
}

func newLines() *lines { return &lines{changed: make(chan struct{})} }

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
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// count returns how many lines so far contain s.
func (l *lines) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.got {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// next returns the next line in order.
func (l *lines) next(t testing.TB) string {
	t.Helper()
	return l.waitFor(t, "")
}

// waitFor returns the next line that contains s, skipping those before it.
func (l *lines) waitFor(t testing.TB, s string) string {
	t.Helper()
	deadline := time.After(wait)
	for {
		l.mu.Lock()
		for l.read < len(l.got) {
			line := l.got[l.read]
			l.read++
			if strings.Contains(line, s) {
				l.mu.Unlock()
				return line
			}
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no line containing %q within %v; so far:\n%s", s, wait, l.String())
			return ""
		}
	}
}

// waitUntil waits until done, given every complete line so far, is true;
// what says what the test waits for. done runs with the lines locked.
func (l *lines) waitUntil(t testing.TB, what string, done func(got []string) bool) {
	t.Helper()
	deadline := time.After(wait)
	for {
		l.mu.Lock()
		changed := l.changed
		ok := done(l.got)
		l.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("want %s within %v; so far:\n%s", what, wait, l.String())
		}
	}
}

// waitForCount waits until n lines contain s.
func (l *lines) waitForCount(t testing.TB, s string, n int) {
	t.Helper()
	deadline := time.After(wait)
	for {
		l.mu.Lock()
		changed := l.changed
		l.mu.Unlock()
		if l.count(s) >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("want %d lines containing %q within %v, have %d", n, s, wait, l.count(s))
		}
	}
}

func runWithTimeout(t testing.TB, args []string, stdin io.Reader, stdout io.Writer) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return run(ctx, args, stdin, stdout, io.Discard)
}

// dial connects with a deadline on every later read and write, and
// closes the connection when the test ends.
func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// dialGreeted connects and reads the greeting line.
func dialGreeted(t testing.TB, addr string) net.Conn {
	t.Helper()
	conn := dial(t, addr)
	require.Equal(t, greetingLine+"\n", readLine(t, conn))
	return conn
}

// readLine reads one line byte by byte, so that nothing after it is
// swallowed by a buffer.
func readLine(t testing.TB, conn net.Conn) string {
	t.Helper()
	var line []byte
	b := make([]byte, 1)
	for {
		_, err := conn.Read(b)
		require.NoError(t, err, "reading a line, got %q so far", line)
		line = append(line, b[0])
		if b[0] == '\n' {
			return string(line)
		}
	}
}

func send(t testing.TB, conn net.Conn, msg string) {
	t.Helper()
	_, err := io.WriteString(conn, msg)
	require.NoError(t, err)
}

// readEcho reads replies until they carry msg. TCP is a stream: msg may
// come back in one chunk ("OK...msg") or in several ("OK...ms", "OK...g"),
// so the test removes the markers and compares what is left.
func readEcho(t testing.TB, conn net.Conn, msg string) {
	t.Helper()
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		payload := strings.ReplaceAll(string(got), "OK...", "")
		if payload == msg && strings.HasPrefix(string(got), "OK...") {
			return
		}
		require.NoError(t, err, "waiting for the echo of %q, got %q", msg, got)
		require.True(t, strings.HasPrefix(msg, payload), "want the echo of %q, got %q", msg, got)
	}
}

// assertServesAFreshClient checks the server still works after an attack.
func assertServesAFreshClient(t testing.TB, addr string) {
	t.Helper()
	conn := dialGreeted(t, addr)
	send(t, conn, "are you alive?\n")
	readEcho(t, conn, "are you alive?\n")
	conn.Close()
}

// assertNoGoroutinesLeft waits until no goroutine is running code from
// this package's non-test files, and fails listing them if some still are
// after half a second: time enough for goroutines on their way out, too
// short for one still talking to a client.
func assertNoGoroutinesLeft(t testing.TB) {
	t.Helper()
	// This package's files as the compiler recorded them, which is how
	// stack traces name them, whatever the working directory is (a test
	// binary built on one system may run on another, under Wine say).
	_, self, _, ok := runtime.Caller(0)
	require.True(t, ok, "no caller information")
	prefix := path.Dir(self) + "/"
	var left []string
	deadline := time.Now().Add(500 * time.Millisecond)
	for {
		left = left[:0]
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		// The first goroutine is this one, running the test.
		for _, g := range strings.Split(string(buf), "\n\n")[1:] {
			for _, line := range strings.Split(g, "\n") {
				// A frame's file line reads "\t/path/main.go:42 +0x1d".
				file, _, _ := strings.Cut(strings.TrimSpace(line), " ")
				if i := strings.LastIndex(file, ":"); i > 0 {
					file = file[:i]
				}
				if strings.HasPrefix(file, prefix) && !strings.HasSuffix(file, "_test.go") {
					left = append(left, g)
					break
				}
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		runtime.Gosched()
	}
	assert.Empty(t, left, "goroutines still running the server's code")
}

// closedPort returns an address where nothing listens: a port that was
// just free and has been closed again.
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func portOf(t testing.TB, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	return port
}

func lookTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (on Debian: apt-get install %s); .ci/run installs it", name, map[string]string{"nc": "netcat-openbsd", "telnet": "telnet"}[name])
	}
	return path
}

var ports = regexp.MustCompile(`(127\.0\.0\.1|\[::1\]|localhost):\d+`)

// assertTranscript compares got with the README block marked
// <!-- transcript: name -->, ignoring the "$ " command lines and the port
// numbers, which change from run to run.
func assertTranscript(t testing.TB, name, got string) {
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
		if !strings.HasPrefix(line, "$ ") {
			want = append(want, ports.ReplaceAllString(line, "$1:PORT"))
		}
	}
	have := strings.Split(ports.ReplaceAllString(strings.TrimSuffix(got, "\n"), "$1:PORT"), "\n")
	assert.Equal(t, want, have, "README transcript %q differs from the program's output", name)
}

func TestMemoryStaysFixedWhileAClientStreams8MB(t *testing.T) {
	srv := startServer(t)
	conn := dialGreeted(t, srv.addr)
	const size = 8 << 20
	data := bytes.Repeat([]byte("x"), size)
	buf := make([]byte, 64<<10)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sent := make(chan error, 1)
	go func() {
		_, err := conn.Write(data)
		sent <- err
	}()
	// Count the x's that come back; the "OK..." markers are not x's.
	for got := 0; got < size; {
		n, err := conn.Read(buf)
		require.NoError(t, err)
		got += bytes.Count(buf[:n], []byte("x"))
	}
	require.NoError(t, <-sent)
	runtime.ReadMemStats(&after)

	// The connection's goroutine reuses one buffer of 5 + 1024 bytes,
	// so the whole process allocates far less than the 8 MB that went
	// through it.
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d bytes while streaming %d", allocated, size)
	assert.Less(t, allocated, uint64(1<<20), "allocated %d bytes while streaming %d", allocated, size)
}

func TestMemoryStaysFixedWhileAClientSendsOneByteAtATime(t *testing.T) {
	srv := startServer(t)
	conn := dialGreeted(t, srv.addr)
	const bytesSent = 2000
	one := []byte("z")
	reply := make([]byte, len("OK...")+1)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// Lock-step: each byte is a Read, a reply and a Write of its own,
	// the most work per byte a client can cause.
	for i := 0; i < bytesSent; i++ {
		_, err := conn.Write(one)
		require.NoError(t, err)
		_, err = io.ReadFull(conn, reply)
		require.NoError(t, err)
	}
	runtime.ReadMemStats(&after)
	require.Equal(t, "OK...z", string(reply))

	// No byte costs the server a new buffer: what the process allocates
	// is far less than even 100 bytes per byte.
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d bytes for %d one-byte messages", allocated, bytesSent)
	assert.Less(t, allocated, uint64(100*bytesSent), "allocated %d bytes for %d one-byte messages", allocated, bytesSent)
}

func TestClientsThatNeverReadHoldAFixedAmountOfMemoryEach(t *testing.T) {
	srv := startServer(t, "-idle-timeout", "1m")
	const clients = 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	// Each client sends without reading until a write blocks for
	// 100 ms: its replies fill every buffer on the way back, the
	// server's Write blocks, and it stops reading from that client.
	var wg sync.WaitGroup
	sentTotal := make(chan int, clients)
	for i := 0; i < clients; i++ {
		conn := dialGreeted(t, srv.addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			chunk := make([]byte, 64<<10)
			sent := 0
			for {
				conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				n, err := conn.Write(chunk)
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

	// The kernel's buffers hold the backlog, not the server: the heap
	// grows by far less than what the clients pushed at it.
	grown := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("%d clients sent %d bytes; heap in use grew by %d bytes", clients, total, grown)
	assert.Less(t, grown, int64(clients*64<<10), "heap grew by %d bytes for %d clients", grown, clients)
	assert.Greater(t, total, clients*64<<10, "each client got more than 64 KiB in before its writes blocked")
	srv.out.waitForCount(t, "connected", clients)
}

// failingListener fails its first Accepts with errno, the way a kernel
// reports it, then accepts for real. Tests use it for the errors a real
// test cannot cause: Go's own Accept retries ECONNABORTED on Linux, and
// filling the system's file table (ENFILE) would starve the machine. It
// notes when each Accept was called, so a test can measure the pauses.
type failingListener struct {
	*net.TCPListener
	errno syscall.Errno
	mu    sync.Mutex
	fails int
	calls []time.Time
}

func (l *failingListener) AcceptTCP() (*net.TCPConn, error) {
	l.mu.Lock()
	l.calls = append(l.calls, time.Now())
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(),
			Err: os.NewSyscallError("accept", l.errno)}
	}
	l.mu.Unlock()
	return l.TCPListener.AcceptTCP()
}

func (l *failingListener) times() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.calls...)
}

// runAcceptLoop runs a server's accept loop on a faked listener, with
// room for 10 clients, and returns its log. When the test ends it stops
// the loop, closes the listener and shuts the server down.
func runAcceptLoop(t *testing.T, fake *failingListener) *lines {
	t.Helper()
	out := newLines()
	srv := &server{idle: wait, grace: wait, log: log.New(out, "", 0),
		conns: make(map[*net.TCPConn]struct{}), perIP: make(map[netip.Addr]int)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.acceptLoop(ctx, fake, 10)
	}()
	t.Cleanup(func() {
		cancel()
		fake.Close()
		select {
		case <-done:
		case <-time.After(wait):
			t.Error("the accept loop did not end when its listener closed")
		}
		srv.shutdown(time.Now().Add(wait))
	})
	return out
}

func TestAcceptLoopSurvivesAClientThatAbortedInTheBacklog(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	out := runAcceptLoop(t, &failingListener{TCPListener: ln.(*net.TCPListener), errno: syscall.ECONNABORTED, fails: 3})

	// Three failed Accepts, then this client is served as usual.
	dialGreeted(t, ln.Addr().String())
	assert.Equal(t, 1, out.count("accept failed"), "one line for the streak, not one per failure:\n%s", out.String())
	assert.Equal(t, 1, out.count("accepting again after 3 failed attempts"), out.String())
}

func TestAcceptLoopBacksOffWhenTheSystemRunsOutOfFiles(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	// The client connects first and waits in the backlog while the
	// whole system is out of files (ENFILE): three Accepts fail.
	conn := dial(t, ln.Addr().String())
	fake := &failingListener{TCPListener: ln.(*net.TCPListener), errno: syscall.ENFILE, fails: 3}
	out := runAcceptLoop(t, fake)

	// Once Accept works again, the waiting client is served.
	require.Equal(t, greetingLine+"\n", readLine(t, conn))
	send(t, conn, "hello\n")
	readEcho(t, conn, "hello\n")
	conn.Close() // so that the shutdown need not wait for it

	// It took the same path as EMFILE: one line with the EMFILE hint,
	// pauses of at least 5, 10 and 20 ms, and one line when it is over.
	assert.Equal(t, 1, out.count("accept failed, retrying with back-off"), "one line for the streak:\n%s", out.String())
	assert.Contains(t, out.String(), syscall.ENFILE.Error()+": the whole system is out of open files, not just this program")
	assert.Contains(t, out.String(), "(see docs/errors.md#emfile)")
	assert.Equal(t, 1, out.count("accepting again after 3 failed attempts"), out.String())
	calls := fake.times()
	require.GreaterOrEqual(t, len(calls), 4, "three failed Accepts, then the real one")
	for i, pause := range []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond} {
		assert.GreaterOrEqual(t, calls[i+1].Sub(calls[i]), pause, "pause after failure %d", i+1)
	}
}
