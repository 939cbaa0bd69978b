package main

// The lesson's claims, in the order the README tells them: many clients
// at once; a clean stop; the limits (-max-conns, the back-off, the idle
// timeout, the write deadline, -max-conns-per-ip, the log); what attacks
// cost; the client; the command line; the README's sessions. The
// machinery they share is in helpers_test.go.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
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
	// Dialing 300 clients can take longer than one deadline on a slow
	// machine (under Wine it does), so each round trip gets its own.
	for i, conn := range conns {
		require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
		msg := fmt.Sprintf("client %d says hi\n", i)
		send(t, conn, msg)
		readEcho(t, conn, msg)
	}
	srv.out.waitForCount(t, "connected", clients)
}

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

// The idle deadline is not moved for every message (see handle): it
// is moved when it passes while the client is still talking. A client
// that talks through several idle timeouts is served throughout, and
// once it falls silent it is closed no sooner than -idle-timeout later.
func TestATalkingClientOutlivesTheIdleTimeoutAndIsClosedOnceSilent(t *testing.T) {
	const idle = 400 * time.Millisecond
	srv := startServer(t, "-idle-timeout", idle.String())
	conn := dialGreeted(t, srv.addr)

	var last time.Time
	for start := time.Now(); time.Since(start) < 3*idle; {
		time.Sleep(idle / 8) // a message now and then: never idle
		last = time.Now()
		send(t, conn, "still here")
		readEcho(t, conn, "still here")
	}
	rest, err := io.ReadAll(conn) // until the server closes
	require.NoError(t, err, "the server should close with FIN, not reset")
	assert.Equal(t, "bye: idle for 400ms, closing\n", string(rest))
	assert.GreaterOrEqual(t, time.Since(last), idle, "closed only after -idle-timeout of silence")
}

// A message longer than the 1 KB an idle client's buffer holds comes
// back in two chunks, not sixteen: a read that fills the small buffer
// makes the next one borrow a 16 KiB buffer.
func TestA16KiBMessageIsReadInTwoChunksNotSixteen(t *testing.T) {
	srv := startServer(t)
	conn := dialGreeted(t, srv.addr)
	msg := bytes.Repeat([]byte("x"), 16<<10)
	send(t, conn, string(msg))
	var reply []byte
	buf := make([]byte, 64<<10)
	for bytes.Count(reply, []byte("x")) < len(msg) {
		n, err := conn.Read(buf)
		require.NoError(t, err)
		reply = append(reply, buf[:n]...)
	}
	// Each chunk the server read comes back after its own "OK...". The
	// kernel may hand the message over in two parts, hence at most 3.
	chunks := bytes.Count(reply, []byte("OK..."))
	assert.LessOrEqual(t, chunks, 3, "chunks for one 16 KiB message")
	assert.True(t, bytes.HasPrefix(reply, []byte("OK..."+strings.Repeat("x", 1025)+"OK...")),
		"the first chunk is the small buffer's 1 KB and a byte")
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
	q.close(time.Now().Add(wait))
	assert.Equal(t, []string{"first\n", "second\nthird\n"}, out.writes)
}

// A line waits a moment (logLinger, 5 ms) for the lines that follow it,
// so that a crowd of clients coming and going costs a few writes, not
// two each. Here the moment is an hour, so that the test does not race
// the clock, and close ends it at once.
func TestALineWaitsForTheNextOnesToShareItsWrite(t *testing.T) {
	out := &recordingWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	close(out.release)
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
	assert.Equal(t, []string{"first\nsecond\n"}, out.writes)
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

	// The connection's goroutine reuses its buffers (the 16 KiB one
	// it reads with while the client streams comes from a pool), so
	// the whole process allocates far less than the 8 MB that went
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

// A message and its reply allocate nothing, in the server or in this
// client: the buffers are the connection's, and a deadline is moved
// only when it passes.
func TestARoundTripAllocatesNothing(t *testing.T) {
	srv := startServer(t)
	conn := dialGreeted(t, srv.addr)
	msg := bytes.Repeat([]byte("x"), 64)
	reply := make([]byte, len("OK...")+len(msg))
	allocs := testing.AllocsPerRun(1000, func() {
		_, err := conn.Write(msg)
		require.NoError(t, err)
		_, err = io.ReadFull(conn, reply)
		require.NoError(t, err)
	})
	assert.Zero(t, allocs, "allocations per round trip")
}

// A client that sent exactly 1 KB and fell silent holds no more than
// an idle one: 1 KB fits the small buffer without filling it, so it does
// not look like the start of a longer message, and the client borrows no
// 16 KiB buffer to wait with.
func TestClientsSilentAfterA1KiBMessageHoldNoBigBuffer(t *testing.T) {
	srv := startServer(t, "-max-conns-per-ip", "0")
	const clients = 200
	msg := strings.Repeat("x", 1024)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC() // the second frees what a pool kept aside in the first
	runtime.ReadMemStats(&before)
	for i := 0; i < clients; i++ {
		conn := dialGreeted(t, srv.addr)
		send(t, conn, msg)
		readEcho(t, conn, msg)
	}
	// Every goroutine serving a client waits in Read again.
	srv.out.waitForCount(t, "connected", clients)
	deadline := time.Now().Add(wait)
	for parked := 0; parked < clients && time.Now().Before(deadline); runtime.Gosched() {
		parked = 0
		for _, g := range handlerStacks() {
			if strings.Contains(g, "internal/poll.runtime_pollWait(") {
				parked++
			}
		}
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	// A client is a connection and its bookkeeping, a few KB (more
	// with -race); one that waited with a borrowed buffer would hold
	// 16 KiB more.
	grown := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("heap in use grew by %d bytes for %d clients", grown, clients)
	assert.Less(t, grown, int64(clients*12<<10), "heap grew by %d bytes for %d clients", grown, clients)
}

func TestClientsThatNeverReadHoldAFixedAmountOfMemoryEach(t *testing.T) {
	srv := startServer(t, "-idle-timeout", "1m")
	const clients = 20
	var before, after runtime.MemStats
	runtime.GC()
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
	// Two collections: the first moves the spare buffers of the pool
	// that busy clients borrow from (bigBuffers) aside, the second
	// frees them. What is left is what the clients hold.
	runtime.GC()
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

func TestClientModeSendsLinesAndPrintsReplies(t *testing.T) {
	srv := startServer(t)
	// At the end of its input the client half-closes, prints what is
	// left, and returns nil, saying nothing more.
	client := startClient(t, strings.NewReader("hello\nworld\n"), "-addr", srv.addr)
	require.NoError(t, client.wait(t))
	assert.Equal(t, greetingLine+"\nOK...hello\nOK...world\n", client.stdout.String())
	assert.Empty(t, client.stderr.String())
}

func TestClientSaysOnceThatTheServerClosedTheConnection(t *testing.T) {
	srv := startServer(t, "-idle-timeout", "200ms")
	// The user has typed one line and is thinking about the next (the
	// input stays open) when the server gives up on the silence.
	stdin, typing := io.Pipe()
	t.Cleanup(func() { typing.Close() })
	client := startClient(t, stdin, "-addr", srv.addr)
	send(t, typing, "hello\n")
	require.NoError(t, client.wait(t), "a server that closes is not an error")
	assert.Equal(t, greetingLine+"\nOK...hello\nbye: idle for 200ms, closing\n", client.stdout.String())
	assert.Equal(t, "server closed the connection\n", client.stderr.String())
}

func TestClientPrintsTheShutdownGoodbyeAndSaysTheServerClosed(t *testing.T) {
	srv := startServer(t)
	stdin, typing := io.Pipe()
	t.Cleanup(func() { typing.Close() })
	client := startClient(t, stdin, "-addr", srv.addr)
	send(t, typing, "one\n")
	client.stdout.waitFor(t, "OK...one")
	srv.stop() // Ctrl+C on the server, while the client has more to say
	require.NoError(t, client.wait(t))
	assert.Equal(t, greetingLine+"\nOK...one\nbye: server shutting down\n", client.stdout.String())
	assert.Equal(t, "server closed the connection\n", client.stderr.String())
}

func TestClientTurnedAwayPrintsTheServersLineNotAsAReply(t *testing.T) {
	srv := startServer(t, "-max-conns-per-ip", "1")
	dialGreeted(t, srv.addr) // the one client 127.0.0.1 may have
	// The client has a line to send, but the server's first line is its
	// goodbye, not a greeting: the client prints it, sends nothing, and
	// says that the server closed.
	client := startClient(t, strings.NewReader("hello\n"), "-addr", srv.addr)
	require.NoError(t, client.wait(t))
	assert.Equal(t, "bye: too many connections from your address (limit 1), closing\n", client.stdout.String())
	assert.Equal(t, "server closed the connection\n", client.stderr.String())
}

func TestClientStopsQuietlyOnCtrlC(t *testing.T) {
	srv := startServer(t)
	stdin, typing := io.Pipe()
	t.Cleanup(func() { typing.Close() })
	client := startClient(t, stdin, "-addr", srv.addr)
	client.stdout.waitFor(t, greetingLine)
	client.stop() // Ctrl+C while the client waits for the user
	require.NoError(t, client.wait(t))
	assert.Equal(t, greetingLine+"\n", client.stdout.String())
	assert.Empty(t, client.stderr.String())
}

func TestClientReportsConnectionRefused(t *testing.T) {
	addr := closedPort(t)
	err := runWithTimeout(t, []string{"-client", "-addr", addr}, strings.NewReader("hi\n"), io.Discard)
	require.Error(t, err)
	assert.True(t, isErrno(err, syscall.ECONNREFUSED), "want ECONNREFUSED, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#econnrefused)")
}

func TestBusyAddressFailsWithAddressInUse(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	defer ln.Close()

	err = run(context.Background(), []string{"-addr", ln.Addr().String()}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.True(t, isErrno(err, syscall.EADDRINUSE), "want EADDRINUSE, got %v", err)
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

func TestAnAddressWithoutAHostGetsAHint(t *testing.T) {
	// "-addr 9006" is a port alone. The error says how to write it.
	err := run(context.Background(), []string{"-addr", "9006"}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Equal(t, "listen on 9006: address 9006: missing port in address (write host:port, e.g. 127.0.0.1:9006 or :9006)", explain(err))
	err = run(context.Background(), []string{"-client", "-addr", "9006"}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Equal(t, "connect to 9006: address 9006: missing port in address (write host:port, e.g. 127.0.0.1:9006 or :9006)", explain(err))
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
		require.True(t, isErrno(errno, syscall.EADDRINUSE), "want WSAEADDRINUSE, got %v", errno)
		got = strings.Replace(got, errno.Error(), "address already in use", 1)
	}
	assertTranscript(t, "address-in-use", got)
}

// The ladder in steps/ ends at this program: its last step serves
// clients with this program's code, declaration by declaration, so the
// two cannot drift apart. The one difference: here a failed Accept's log
// line is explained (errors.go), where the step prints the bare error.
func TestTheLastStepServesClientsWithThisProgramsCode(t *testing.T) {
	step := declarations(t, "steps/9-cost-per-client/main.go", "steps/9-cost-per-client/logqueue.go")
	here := declarations(t, "main.go", "closing.go", "perip.go", "logqueue.go")
	here["server.acceptLoop"] = strings.Replace(here["server.acceptLoop"],
		`back-off: %s", explain(err))`, `back-off: %v", err)`, 1)
	for name, code := range here {
		assert.Equal(t, code, step[name], "%s differs between the last step and the finished program", name)
	}
	assert.Len(t, here, 25, "the number of declarations compared")
}
