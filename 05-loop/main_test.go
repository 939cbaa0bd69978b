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

// quiet is how long a test listens to make sure that nothing arrives.
// Silence cannot be proven, only observed for a while; on loopback a
// greeting that was going to come would come within microseconds.
const quiet = 100 * time.Millisecond

func TestPrintsTheAddressItReallyListensOn(t *testing.T) {
	srv := startServer(t)
	// Port 0 asks the kernel for any free port; the program must print
	// the one it got, or nobody could connect.
	assert.NotEqual(t, "0", portOf(t, srv.addr))
	connect(t, srv.addr).greeted()
}

func TestGreetsEachClientWithOneLine(t *testing.T) {
	srv := startServer(t)
	for i := 0; i < 3; i++ {
		c := connect(t, srv.addr)
		c.greeted()
		// The greeting is one line and nothing more: the very next bytes
		// are the answer to what we send.
		c.ask("ping\n")
		c.leave()
	}
}

func TestAnswersEachChunkWithOK(t *testing.T) {
	srv := startServer(t)
	c := connect(t, srv.addr)
	c.greeted()
	for _, msg := range []string{"hello\n", "how are you?\n", "no newline", "\n"} {
		got := c.ask(msg)
		assert.True(t, strings.HasPrefix(got, "OK..."), "every answer starts with OK..., got %q", got)
	}
}

func TestLongMessageComesBackInChunksOfAtMost4096Bytes(t *testing.T) {
	srv := startServer(t)
	c := connect(t, srv.addr)
	c.greeted()
	msg := strings.Repeat("0123456789", 1000) // 10000 bytes, no "OK..." inside
	got := c.ask(msg)

	// One Read takes at most 4096 bytes, so 10000 bytes are at least
	// three chunks, each answered on its own.
	chunks := strings.Split(got, "OK...")[1:]
	assert.GreaterOrEqual(t, len(chunks), 3)
	for _, chunk := range chunks {
		assert.LessOrEqual(t, len(chunk), 4096)
		assert.NotEmpty(t, chunk, "no empty chunk is ever answered")
	}
	assert.Equal(t, msg, strings.Join(chunks, ""))
}

func TestAnswersAnyBytesIncludingZerosAndInvalidUTF8(t *testing.T) {
	srv := startServer(t)
	c := connect(t, srv.addr)
	c.greeted()
	// The server never interprets what it receives, so there is nothing
	// to parse and nothing to choke on: every byte value comes back.
	var all []byte
	for b := 0; b < 256; b++ {
		all = append(all, byte(b))
	}
	c.ask(string(all))
	c.leave()
	connect(t, srv.addr).greeted()
}

func TestByteAtATimeSenderIsAnsweredByteByByte(t *testing.T) {
	srv := startServer(t)
	c := connect(t, srv.addr)
	c.greeted()
	// In lock-step, each byte is a chunk of its own.
	for _, b := range []byte("one byte at a time") {
		assert.Equal(t, "OK..."+string(b), c.ask(string(b)))
	}
}

func TestSecondClientIsNotGreetedWhileTheFirstIsConnected(t *testing.T) {
	srv := startServer(t) // -max-conns keeps its default of 1000
	first := connect(t, srv.addr)
	first.greeted()

	// The kernel completes the second handshake by itself, so Dial
	// succeeds; but the server is busy in the first client's loop and
	// does not call Accept, so nobody greets the second.
	second := connect(t, srv.addr)
	second.hearsNothing()
	first.ask("still here\n")
	second.hearsNothing()
}

func TestSecondClientIsServedAsSoonAsTheFirstLeaves(t *testing.T) {
	// A long idle timeout: the second client's turn must come from the
	// first one leaving, not from a timer.
	srv := startServer(t, "-idle-timeout", "1m")
	first := connect(t, srv.addr)
	first.greeted()
	second := connect(t, srv.addr)
	// What the second client sends while it waits is kept by the kernel.
	second.write("sent while waiting\n")

	first.leave()
	second.greeted()
	assert.Equal(t, "sent while waiting\n", strip(second.readAtLeast(len("sent while waiting\n"))))
}

func TestReadAfterTheClientLeftReturnsEOFEveryTime(t *testing.T) {
	// This is the root of the articles' infinite loop. Python's recv
	// returns b"" when the peer has closed; Go's Read returns 0 and
	// io.EOF, immediately and again on every call. A loop that ignores
	// that keeps reading nothing, as fast as the CPU allows.
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	defer ln.Close()
	client, err := net.DialTimeout("tcp", ln.Addr().String(), wait)
	require.NoError(t, err)
	conn, err := ln.Accept()
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(wait)))
	require.NoError(t, client.Close())

	buf := make([]byte, 4096)
	for i := 0; i < 1000; i++ {
		n, err := conn.Read(buf)
		require.Equal(t, 0, n)
		require.ErrorIs(t, err, io.EOF)
	}
}

func TestDepartedClientDoesNotSpinTheServer(t *testing.T) {
	srv := startServer(t)
	c := connect(t, srv.addr)
	who := c.conn.LocalAddr().String()
	c.greeted()
	c.ask("goodbye\n")
	c.leave()

	// A sequential server can only greet the next client once the loop
	// for the previous one has ended: being greeted proves it did not
	// spin on empty reads.
	next := connect(t, srv.addr)
	next.greeted()
	assert.Equal(t, []string{
		"client " + who + " connected",
		"client " + who + " left",
	}, srv.out.linesAbout(t, who), "one line for arriving, exactly one for leaving")
}

func TestClientThatLeavesWithoutSendingDoesNotStopTheServer(t *testing.T) {
	// The article's looping server broke out of its accept loop when a
	// client sent nothing. Here the empty read ends only that client.
	srv := startServer(t)
	c := connect(t, srv.addr)
	c.greeted()
	c.leave()
	connect(t, srv.addr).greeted()
	srv.out.waitForLine(t, "client "+c.conn.LocalAddr().String()+" left")
}

func TestClientThatResetsDoesNotStopTheServer(t *testing.T) {
	srv := startServer(t)
	c := connect(t, srv.addr)
	who := c.conn.LocalAddr().String()
	c.greeted()
	c.ask("about to vanish\n")
	c.reset()

	connect(t, srv.addr).greeted()
	assert.Contains(t, srv.out.linesAbout(t, who), "client "+who+" reset the connection")
}

func TestServerSurvivesHundredsOfClientsResettingMidStream(t *testing.T) {
	srv := startServer(t)
	// All 200 connect at once and queue in the backlog; each, when its
	// turn comes, sends a message and resets without reading the answer,
	// so the server meets the reset in Read or in Write.
	const clients = 200
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- resetMidStream(srv.addr)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	c := connect(t, srv.addr)
	c.greeted()
	c.ask("anyone there?\n")
	log := srv.out.waitFor(t, "every client's arrival", func(out string) bool {
		return strings.Count(out, " connected\n") >= clients+1
	})
	assert.Equal(t, clients+1, strings.Count(log, " connected\n"))
}

// resetMidStream is one misbehaving client: it waits for its greeting,
// sends a message and aborts the connection with RST.
func resetMidStream(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Everyone waits for the 199 before it: a generous deadline.
	if err := conn.SetDeadline(time.Now().Add(4 * wait)); err != nil {
		return err
	}
	if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if _, err := conn.Write([]byte("half a sent")); err != nil {
		return err
	}
	// Linger 0 makes Close send RST instead of FIN.
	if err := conn.(*net.TCPConn).SetLinger(0); err != nil {
		return err
	}
	return conn.Close()
}

func TestSilentClientIsToldAndClosedAfterIdleTimeout(t *testing.T) {
	srv := startServer(t, "-idle-timeout", "100ms")
	c := connect(t, srv.addr)
	who := c.conn.LocalAddr().String()
	c.greeted()
	// Say nothing. The server gives up, says why, and closes with FIN.
	assert.Equal(t, "bye: idle for 100ms, closing\n", c.rest())
	c.leave()
	assert.Contains(t, srv.out.linesAbout(t, who), "client "+who+" idle, closed")
	connect(t, srv.addr).greeted()
}

func TestSilentClientHoldsUpTheQueueUntilIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	srv := startServer(t, "-idle-timeout", idle.String())
	start := time.Now()
	silent := connect(t, srv.addr)
	silent.greeted()
	waiting := connect(t, srv.addr)
	waiting.write("let me in\n")

	// The waiting client is greeted only after the silent one has been
	// timed out: that is the price of serving one client at a time.
	assert.Equal(t, fmt.Sprintf("bye: idle for %v, closing\n", idle), silent.rest())
	silent.leave()
	waiting.greeted()
	assert.GreaterOrEqual(t, time.Since(start), idle)
	silentWho := silent.conn.LocalAddr().String()
	waitingWho := waiting.conn.LocalAddr().String()
	log := srv.out.waitForLine(t, "client "+waitingWho+" connected")
	assert.Less(t,
		strings.Index(log, "client "+silentWho+" idle, closed"),
		strings.Index(log, "client "+waitingWho+" connected"),
		"the silent client must be closed before the waiting one is accepted:\n%s", log)
	assert.Equal(t, "let me in\n", strip(waiting.readAtLeast(len("let me in\n"))))
}

func TestTricklingClientIsClosedAtTheEndOfItsTurnAndTheNextIsServed(t *testing.T) {
	// A byte every 20 ms keeps an idle timeout of 1 s from ever firing:
	// only the end of the turn can close this client.
	const turn = 300 * time.Millisecond
	srv := startServer(t, "-idle-timeout", "1s", "-max-turn", turn.String())
	start := time.Now()
	trickler := connect(t, srv.addr)
	trickler.greeted()
	waiting := connect(t, srv.addr)
	waiting.write("let me in\n")

	// Trickle until the server closes, but 200 bytes (4 s) at most, so
	// that against a server with no turn limit the test still ends.
	closed := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 200; i++ {
			select {
			case <-closed:
				return
			case <-tick.C:
			}
			if _, err := trickler.conn.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	got := trickler.rest()
	close(closed)
	<-trickled
	trickler.leave()

	answers, bye, ok := strings.Cut(got, "bye: ")
	require.True(t, ok, "no goodbye in %q", got)
	assert.Equal(t, fmt.Sprintf("turn over after %v, closing\n", turn), bye)
	assert.NotEmpty(t, answers, "the trickler was answered while its turn lasted")
	assert.Empty(t, strings.Trim(strip(answers), "x"), "only its own bytes came back: %q", answers)
	assert.GreaterOrEqual(t, time.Since(start), turn)

	// The waiting client is served next, with what it sent while waiting.
	waiting.greeted()
	assert.Equal(t, "let me in\n", strip(waiting.readAtLeast(len("let me in\n"))))
	who := trickler.conn.LocalAddr().String()
	assert.Equal(t, []string{"client " + who + " connected", "client " + who + " turn over, closed"},
		srv.out.linesAbout(t, who))
}

func TestFloodingClientThatNeverReadsIsCutOffAndTheNextIsServed(t *testing.T) {
	srv := startServer(t, "-idle-timeout", "500ms")

	// The flooder sends up to 64 MB at once and reads nothing. The
	// server answers until the replies fill the buffers and its Write
	// blocks; the write deadline (the idle timeout) then cuts the
	// flooder off. Under load, TCP's flow control sometimes pauses the
	// flood first, and then the read deadline (the same idle timeout)
	// cuts it off instead: either way it is gone within the timeout.
	flooder := connect(t, srv.addr)
	who := flooder.conn.LocalAddr().String()
	flooded := make(chan error, 1)
	go func() {
		_, err := flooder.conn.Write(make([]byte, 64<<20))
		flooded <- err
	}()

	// The next client waits its turn, and is served after the flooder.
	next := connect(t, srv.addr)
	next.greeted()
	next.ask("my turn\n")
	// After "connected", exactly one line about the flooder: why it was
	// closed.
	lines := srv.out.linesAbout(t, who)
	require.Len(t, lines, 2, "connected, then closed: %q", lines)
	assert.Contains(t, []string{
		"client " + who + " stopped reading, closed",
		"client " + who + " idle, closed",
	}, lines[1])
	select {
	case err := <-flooded:
		assert.Error(t, err, "the server closed on the flooder before it sent 64 MB")
	case <-time.After(wait):
		t.Fatal("the flooder's Write never ended")
	}
}

func TestServerKeepsServingAndStopsInTimeWhileNobodyReadsItsLog(t *testing.T) {
	// stdout is a pipe that nobody reads (a paused `| less`): every
	// write to it blocks, from just after the "listening on" line.
	stuck := &stuckStdout{released: make(chan struct{})}
	srv := startServerOn(t, func(l *lines) io.Writer { stuck.to = l; return stuck }, "-grace", "200ms")
	stuck.hold()
	t.Cleanup(stuck.release)

	// 600 clients make 1,200 log lines, more than the log's queue holds.
	// Each is served all the same.
	const clients = 600
	for i := 0; i < clients; i++ {
		c := connect(t, srv.addr)
		c.greeted()
		c.leave()
	}

	// Ctrl+C still stops the server within -grace (plus the scheduler's
	// slack), although its last log lines cannot be written.
	start := time.Now()
	srv.stop()
	require.NoError(t, srv.wait(t))
	assert.Less(t, time.Since(start), 200*time.Millisecond+time.Second)

	// Once stdout moves again, the queued lines come out, and the count
	// of the lines that did not fit. Every line is either written or
	// counted: two per client, and "stopped".
	stuck.release()
	dropped := regexp.MustCompile(`^log: (\d+) lines dropped while the log was not being read$`)
	srv.out.waitFor(t, "the queued lines and the count of dropped ones", func(out string) bool {
		written, lost := 0, 0
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n")[1:] {
			if m := dropped.FindStringSubmatch(line); m != nil {
				n, _ := strconv.Atoi(m[1])
				lost += n
			} else {
				written++
			}
		}
		return lost > 0 && written+lost == 2*clients+1
	})
}

func TestMemoryStaysFixedWhileAClientStreams8MB(t *testing.T) {
	srv := startServer(t)
	c := connect(t, srv.addr)
	c.greeted()
	const size = 8 << 20
	data := bytes.Repeat([]byte("x"), size)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sent := make(chan error, 1)
	go func() {
		_, err := c.conn.Write(data)
		sent <- err
	}()
	// Count the x's that come back; the "OK..." markers are not x's.
	buf := make([]byte, 64<<10)
	for got := 0; got < size; {
		n, err := c.r.Read(buf)
		require.NoError(t, err)
		got += bytes.Count(buf[:n], []byte("x"))
	}
	require.NoError(t, <-sent)
	runtime.ReadMemStats(&after)

	// The server reuses one 4 KiB buffer and one reply buffer, so the
	// whole process allocates far less than the 8 MB that went through.
	allocated := after.TotalAlloc - before.TotalAlloc
	assert.Less(t, allocated, uint64(1<<20), "allocated %d bytes while streaming %d", allocated, size)
}

func TestClientsBeyondMaxConnsWaitInTheBacklog(t *testing.T) {
	// This server serves one client at a time whatever -max-conns says;
	// every other client waits in the kernel's backlog, connected but
	// not greeted, and is never told "server full".
	srv := startServer(t, "-max-conns", "1")
	clients := []*peer{connect(t, srv.addr), connect(t, srv.addr), connect(t, srv.addr)}
	for len(clients) > 0 {
		// One of the clients still waiting is greeted...
		var greeted *peer
		deadline := time.Now().Add(wait)
		for greeted == nil && time.Now().Before(deadline) {
			for _, c := range clients {
				if c.greetedWithin(10 * time.Millisecond) {
					greeted = c
					break
				}
			}
		}
		require.NotNil(t, greeted, "nobody was greeted")
		// ...and only one.
		var others []*peer
		for _, c := range clients {
			if c != greeted {
				c.hearsNothing()
				others = append(others, c)
			}
		}
		greeted.ask("served\n")
		greeted.leave()
		clients = others
	}
}

func TestBadFlagsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-no-such-flag"},
		{"-max-conns", "0"},
		{"-idle-timeout", "0s"},
		{"-grace", "-1s"},
		{"-max-turn", "-1s"},
		{"extra-argument"},
	} {
		var stderr bytes.Buffer
		err := run(context.Background(), args, nil, io.Discard, &stderr)
		assert.ErrorIs(t, err, errUsage, "args %q", args)
		assert.Contains(t, stderr.String(), "-addr", "usage is printed for %q", args)
	}
}

func TestShutdownSendsEveryClientItsFinalLineAndCleanEOF(t *testing.T) {
	srv := startServer(t)
	c := connect(t, srv.addr)
	c.greeted()
	c.ask("in the middle of something\n")

	srv.stop() // what Ctrl+C does
	// The last line, then a clean end of stream (FIN, not a reset).
	assert.Equal(t, "bye: server shutting down\n", c.rest())
	c.conn.Close()
	require.NoError(t, srv.wait(t))
	assert.True(t, strings.HasSuffix(srv.out.String(), "stopped\n"), srv.out.String())
}

func TestClientsStillInTheBacklogAreResetAtShutdown(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("how a closed listener ends queued connections differs between systems; checked on Linux")
	}
	srv := startServer(t)
	served := connect(t, srv.addr)
	served.greeted()
	queued := connect(t, srv.addr)

	srv.stop()
	assert.Equal(t, "bye: server shutting down\n", served.rest())
	served.conn.Close()
	require.NoError(t, srv.wait(t))

	// The queued client was never accepted, so the server could not
	// say goodbye: closing the listener made the kernel reset it.
	_, err := queued.r.ReadByte()
	assert.True(t, errors.Is(err, syscall.ECONNRESET), "want a reset, got %v", err)
}

func TestShutdownDoesNotWaitLongerThanGraceForAClientThatNeverReads(t *testing.T) {
	// An idle timeout of a minute would hold a blocked Write that long;
	// shutdown must give up after -grace instead.
	srv := startServer(t, "-idle-timeout", "1m", "-grace", "200ms")
	c := connect(t, srv.addr)
	who := c.conn.LocalAddr().String()

	// Send without reading until a write blocks: the replies have filled
	// every buffer and the server is stuck in its own Write.
	blocked := make(chan struct{})
	go func() {
		chunk := make([]byte, 64<<10)
		for {
			c.conn.SetWriteDeadline(time.Now().Add(quiet))
			if _, err := c.conn.Write(chunk); err != nil {
				close(blocked)
				return
			}
		}
	}()
	select {
	case <-blocked:
	case <-time.After(wait):
		t.Fatal("writes never blocked")
	}

	start := time.Now()
	srv.stop()
	require.NoError(t, srv.wait(t))
	assert.Less(t, time.Since(start), 2*time.Second, "shutdown took longer than the grace period allows")
	// Normally the server is caught in Write ("stopped reading"); on a
	// very busy machine it may be back in Read and try to say goodbye,
	// which the grace period bounds just the same.
	lines := srv.out.linesAbout(t, who)
	require.Len(t, lines, 2, "connected, then closed: %q", lines)
	assert.Contains(t, []string{
		"client " + who + " stopped reading, closed",
		"client " + who + " closed at shutdown",
	}, lines[1])
}

func TestNoGoroutineLeaksAfterShutdown(t *testing.T) {
	srv := startServer(t)
	talking := connect(t, srv.addr)
	talking.greeted()
	connect(t, srv.addr) // waits in the backlog
	srv.stop()
	talking.rest()
	talking.conn.Close()
	require.NoError(t, srv.wait(t))

	// Every goroutine the program started runs code from its own files;
	// once run has returned, none may be left.
	var stacks string
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		stacks = programGoroutines()
		if stacks == "" {
			return
		}
		runtime.Gosched()
	}
	t.Fatalf("goroutines still running the program's code:\n%s", stacks)
}

// programGoroutines returns the stacks of all goroutines that are in a
// function from the program's own files (not its tests).
func programGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, m := range programFrame.FindAllStringSubmatch(g, -1) {
			if !strings.HasSuffix(m[1], "_test") {
				found = append(found, g)
				break
			}
		}
	}
	return strings.Join(found, "\n\n")
}

// programFrame matches a stack frame in one of the program's files, such
// as 05-loop/main.go:123, and not in a test file.
var programFrame = regexp.MustCompile(`05-loop/([a-z_]+)\.go:\d`)

func TestBusyAddressFailsWithAddressInUse(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	defer ln.Close()

	err = run(context.Background(), []string{"-addr", ln.Addr().String()}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, wsaEADDRINUSE), "want EADDRINUSE, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#eaddrinuse)")
}

func TestClientPrintsTheGreetingAndEachReply(t *testing.T) {
	srv := startServer(t)
	var out bytes.Buffer
	err := runWithTimeout(t, []string{"-client", "-addr", srv.addr}, strings.NewReader("hello\nagain\n"), &out)
	require.NoError(t, err)
	assert.Equal(t, greeting+"OK...hello\nOK...again\n", out.String())
}

func TestClientWaitsForItsTurn(t *testing.T) {
	srv := startServer(t)
	first := connect(t, srv.addr)
	first.greeted()

	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- runWithTimeout(t, []string{"-client", "-addr", srv.addr}, strings.NewReader("hi\n"), &out)
	}()
	select {
	case err := <-done:
		t.Fatalf("the client finished while another was being served: %v", err)
	case <-time.After(quiet): // it should still be waiting for its greeting
	}
	first.leave()
	require.NoError(t, <-done)
	assert.Equal(t, greeting+"OK...hi\n", out.String())
}

func TestClientGivesUpWhenItsTurnDoesNotCome(t *testing.T) {
	srv := startServer(t)
	connect(t, srv.addr).greeted() // and stays connected

	err := runWithTimeout(t, []string{"-client", "-addr", srv.addr, "-idle-timeout", "100ms"}, strings.NewReader("hi\n"), io.Discard)
	require.Error(t, err)
	assert.True(t, isTimeout(err), "want a timeout, got %v", err)
	assert.Contains(t, err.Error(), "read from "+srv.addr)
	assert.Contains(t, explain(err), "(see docs/errors.md#timeout)")
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

	// -N makes nc half-close the connection when its input ends, as
	// our -client does; the server then sees EOF and closes too.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, nc, "-N", host, port)
	cmd.Stdin = strings.NewReader("hi from nc\n")
	got, err := cmd.Output()
	require.NoError(t, err)
	assertTranscript(t, "nc", string(got))
	connect(t, srv.addr).greeted()
}

func TestWorksWithTelnet(t *testing.T) {
	telnet := lookTool(t, "telnet")
	srv := startServer(t)
	host, port, _ := net.SplitHostPort(srv.addr)

	// telnet quits as soon as its input ends, so the input stays open
	// until the answer has been printed.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	stdin, feed := io.Pipe()
	out := newLines()
	cmd := exec.CommandContext(ctx, telnet, host, port)
	cmd.Stdin = stdin
	cmd.Stdout = out
	require.NoError(t, cmd.Start())
	defer cmd.Wait()
	defer feed.Close()
	_, err := io.WriteString(feed, "hi from telnet\n")
	require.NoError(t, err)
	// telnet turns the newline into the network's "\r\n" (or "\r" and
	// a NUL), and translates it back when it prints the answer, so only
	// the text itself is compared.
	out.waitFor(t, "the answer", func(s string) bool {
		return strings.Contains(s, greeting+"OK...hi from telnet")
	})
	feed.Close()
	// Leaving telnet closes the connection: the server sees EOF.
	assert.Equal(t, "connected", lastWord(srv.out.next(t)))
	assert.Equal(t, "left", lastWord(srv.out.next(t)))
}

// The README shows what a learner sees; these tests produce the same
// sessions and compare them line by line, ports aside.

func TestReadmeServerTranscript(t *testing.T) {
	srv := startServer(t, "-idle-timeout", "500ms")
	first := connect(t, srv.addr)
	first.greeted()
	second := connect(t, srv.addr) // waits while the first is served
	first.ask("hello\n")
	first.leave()
	second.greeted() // and says nothing until it is timed out
	second.rest()
	second.leave()
	third := connect(t, srv.addr)
	third.greeted()
	third.reset()
	fourth := connect(t, srv.addr)
	fourth.greeted()
	srv.stop() // Ctrl+C
	fourth.rest()
	fourth.leave()
	require.NoError(t, srv.wait(t))
	assertTranscript(t, "server", srv.out.String())
}

func TestReadmeClientTranscript(t *testing.T) {
	srv := startServer(t)
	var out bytes.Buffer
	require.NoError(t, runWithTimeout(t, []string{"-client", "-addr", srv.addr}, strings.NewReader("hello\nhow are you?\n"), &out))
	assertTranscript(t, "client", out.String())
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

// BenchmarkRequestReply measures round trips of a 64-byte request and
// its reply over one connection, the same load as lessons 06 and 07.
func BenchmarkRequestReply(b *testing.B) {
	srv := startServer(b)
	c := connect(b, srv.addr)
	c.greeted()
	require.NoError(b, c.conn.SetDeadline(time.Now().Add(time.Minute)))
	request := bytes.Repeat([]byte("x"), 64)
	buf := make([]byte, 4096)

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.conn.Write(request); err != nil {
			b.Fatal(err)
		}
		// The reply is "OK..." and the 64 x's, maybe in pieces.
		for got := 0; got < len(request); {
			n, err := c.r.Read(buf)
			if err != nil {
				b.Fatal(err)
			}
			got += bytes.Count(buf[:n], []byte("x"))
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}

// ---- helpers ----

// server is the program running in this test process, as `go run` would
// run it, with its output captured line by line.
type server struct {
	addr string
	out  *lines
	stop context.CancelFunc
	done chan error
}

// startServer runs the program on a free port with args and waits for
// it to print the address it listens on.
func startServer(t testing.TB, args ...string) *server {
	t.Helper()
	return startServerOn(t, func(l *lines) io.Writer { return l }, args...)
}

// startServerOn is startServer with stdout made by stdout from the
// recorder of its lines, so that a test can put its own writer between.
func startServerOn(t testing.TB, stdout func(*lines) io.Writer, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &server{out: newLines(), stop: cancel, done: make(chan error, 1)}
	out := stdout(srv.out)
	args = append([]string{"-addr", "127.0.0.1:0"}, args...)
	go func() { srv.done <- run(ctx, args, nil, out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-srv.done:
			assert.NoError(t, err, "run should return nil after Ctrl+C")
		case <-time.After(wait):
			t.Error("server did not stop after cancel")
		}
	})
	first := srv.out.next(t)
	addr, ok := strings.CutPrefix(first, "listening on ")
	require.True(t, ok, "first line should give the address, got %q", first)
	srv.addr = addr
	return srv
}

// wait returns the program's result, failing the test if it runs on.
func (s *server) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // let Cleanup see it too
		return err
	case <-time.After(wait):
		t.Fatal("server did not return")
		return nil
	}
}

// peer is a test client: a connection with a deadline and a buffered
// reader, and the steps a test takes with it.
type peer struct {
	t    testing.TB
	conn *net.TCPConn
	r    *bufio.Reader
}

func connect(t testing.TB, addr string) *peer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return &peer{t: t, conn: conn.(*net.TCPConn), r: bufio.NewReader(conn)}
}

// greeted reads the greeting line.
func (p *peer) greeted() {
	p.t.Helper()
	line, err := p.r.ReadString('\n')
	require.NoError(p.t, err, "no greeting")
	require.Equal(p.t, greeting, line)
}

// greetedWithin reads the greeting if it comes within d.
func (p *peer) greetedWithin(d time.Duration) bool {
	p.t.Helper()
	require.NoError(p.t, p.conn.SetReadDeadline(time.Now().Add(d)))
	defer p.conn.SetReadDeadline(time.Now().Add(wait))
	if _, err := p.r.Peek(1); isTimeout(err) {
		return false
	}
	p.greeted()
	return true
}

// hearsNothing checks that nothing arrives for a while.
func (p *peer) hearsNothing() {
	p.t.Helper()
	require.NoError(p.t, p.conn.SetReadDeadline(time.Now().Add(quiet)))
	defer p.conn.SetReadDeadline(time.Now().Add(wait))
	b, err := p.r.Peek(1)
	require.True(p.t, isTimeout(err), "expected silence, got %q, %v", b, err)
}

func (p *peer) write(msg string) {
	p.t.Helper()
	_, err := io.WriteString(p.conn, msg)
	require.NoError(p.t, err)
}

// ask sends msg and reads until all of it has come back, however the
// server's reads cut it into chunks. It returns the answer with its
// "OK..." markers.
func (p *peer) ask(msg string) string {
	p.t.Helper()
	p.write(msg)
	got := p.readAtLeast(len(msg))
	assert.Equal(p.t, msg, strip(got))
	return got
}

// readAtLeast reads answers until they hold n bytes besides the markers.
func (p *peer) readAtLeast(n int) string {
	p.t.Helper()
	var got []byte
	buf := make([]byte, 4096)
	for len(strip(string(got))) < n {
		k, err := p.r.Read(buf)
		require.NoError(p.t, err, "answer so far: %q", got)
		got = append(got, buf[:k]...)
	}
	return string(got)
}

// rest reads until the server closes, which must be a clean end (FIN).
func (p *peer) rest() string {
	p.t.Helper()
	b, err := io.ReadAll(p.r)
	require.NoError(p.t, err, "expected a clean end of stream, not a reset")
	return string(b)
}

// leave closes the connection, as a client that is done would.
func (p *peer) leave() {
	p.t.Helper()
	require.NoError(p.t, p.conn.Close())
}

// reset aborts the connection: linger 0 makes Close send RST.
func (p *peer) reset() {
	p.t.Helper()
	require.NoError(p.t, p.conn.SetLinger(0))
	require.NoError(p.t, p.conn.Close())
}

// strip removes the "OK..." markers, leaving what was sent.
func strip(answer string) string { return strings.ReplaceAll(answer, "OK...", "") }

func lastWord(line string) string { return line[strings.LastIndex(line, " ")+1:] }

// lines is an io.Writer that hands each complete line to a channel, so a
// test can wait for the next line instead of sleeping.
type lines struct {
	mu      sync.Mutex
	all     strings.Builder
	part    string
	ch      chan string
	changed chan struct{} // closed and replaced on every write
}

func newLines() *lines {
	return &lines{ch: make(chan string, 1000), changed: make(chan struct{})}
}

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
		select {
		case l.ch <- line:
		default: // nobody is waiting for lines this old; String has them
		}
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

// waitFor waits until the output so far satisfies done, and returns it.
func (l *lines) waitFor(t testing.TB, what string, done func(out string) bool) string {
	t.Helper()
	timeout := time.After(wait)
	for {
		l.mu.Lock()
		out, changed := l.all.String(), l.changed
		l.mu.Unlock()
		if done(out) {
			return out
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("waited %v for %s; so far:\n%s", wait, what, out)
			return ""
		}
	}
}

// waitForLine waits until line has been printed, and returns the output.
func (l *lines) waitForLine(t testing.TB, line string) string {
	t.Helper()
	return l.waitFor(t, line, func(out string) bool {
		return strings.HasPrefix(out, line+"\n") || strings.Contains(out, "\n"+line+"\n")
	})
}

// stuckStdout stands for a pipe that nobody reads: once held, each Write
// blocks until release, and then goes on to the recorder.
type stuckStdout struct {
	to       *lines
	mu       sync.Mutex
	held     bool
	released chan struct{}
	once     sync.Once
}

func (s *stuckStdout) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = true
}

func (s *stuckStdout) release() { s.once.Do(func() { close(s.released) }) }

func (s *stuckStdout) Write(p []byte) (int, error) {
	s.mu.Lock()
	held := s.held
	s.mu.Unlock()
	if held {
		<-s.released
	}
	return s.to.Write(p)
}

// linesAbout returns the log lines that mention who, once the server has
// logged how that client's conversation ended.
func (l *lines) linesAbout(t testing.TB, who string) []string {
	t.Helper()
	var about []string
	l.waitFor(t, "the end of "+who, func(out string) bool {
		about = nil
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, " "+who+" ") {
				about = append(about, line)
			}
		}
		return len(about) > 1
	})
	return about
}

func (l *lines) next(t testing.TB) string {
	t.Helper()
	select {
	case line := <-l.ch:
		return line
	case <-time.After(wait):
		t.Fatalf("no line printed within %v; so far:\n%s", wait, l.String())
		return ""
	}
}

func runWithTimeout(t *testing.T, args []string, stdin io.Reader, stdout io.Writer) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return run(ctx, args, stdin, stdout, io.Discard)
}

// closedPort returns an address where nothing listens: a port that was
// just free and has been closed again.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	return port
}

func lookTool(t *testing.T, name string) string {
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
func assertTranscript(t *testing.T, name, got string) {
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

func TestShutdownLosesNoReplyTheServerAlreadyProduced(t *testing.T) {
	srv := startServer(t)
	c := connect(t, srv.addr)
	c.greeted()

	// The server has produced this reply once its first byte arrives;
	// the rest is still in flight when the stop comes.
	c.write("answered\n")
	first, err := c.r.ReadByte()
	require.NoError(t, err)
	require.Equal(t, byte('O'), first)
	// This one goes out just before the stop: the server may not have
	// read it yet, and then it owes no reply for it.
	c.write("just before the stop\n")

	srv.stop()
	rest := c.rest()
	answered, rest, ok := strings.Cut(rest, "bye: server shutting down\n")
	require.True(t, ok, "no final line in %q", rest)
	assert.Empty(t, rest, "nothing after the final line")
	// A reply that was produced arrives whole, before the final line.
	require.True(t, strings.HasPrefix(answered, "K...answered\n"), "got %q", answered)
	late := strings.TrimPrefix(answered, "K...answered\n")
	assert.Contains(t, []string{"", "OK...just before the stop\n"}, late,
		"the late message is answered whole or not at all")
	c.conn.Close()
	require.NoError(t, srv.wait(t))
}

func TestNoGoroutinePerClientOutlivesAResetStorm(t *testing.T) {
	srv := startServer(t)
	c := connect(t, srv.addr)
	c.greeted()
	// While one client is served, exactly two goroutines run the
	// program's code: the loop in serve, now inside handle, and the one
	// that writes the log.
	require.Equal(t, 2, settledProgramGoroutines(2), programGoroutines())

	c.leave()
	for i := 0; i < 50; i++ {
		require.NoError(t, resetMidStream(srv.addr))
	}
	// The resets left nothing running behind: the same single loop
	// serves the next client.
	next := connect(t, srv.addr)
	next.greeted()
	next.ask("after the storm\n")
	assert.Equal(t, 2, settledProgramGoroutines(2), programGoroutines())
}

// settledProgramGoroutines waits up to a few seconds for the number of
// goroutines in main.go's functions to become want, and returns the last
// count. A goroutine can outlive its work by a moment: the one that
// context.AfterFunc starts to close an earlier test's listener may still
// be inside close(2) when that server has already returned. Waiting for
// the count to settle keeps such stragglers from being counted as leaks.
func settledProgramGoroutines(want int) int {
	deadline := time.Now().Add(wait)
	for {
		n := countProgramGoroutines()
		if n == want || time.Now().After(deadline) {
			return n
		}
		<-time.After(5 * time.Millisecond)
	}
}

// countProgramGoroutines counts the goroutines in a function from main.go.
func countProgramGoroutines() int {
	stacks := programGoroutines()
	if stacks == "" {
		return 0
	}
	return len(strings.Split(stacks, "\n\n"))
}

// failingListener fails its first Accepts with errno, the way a kernel
// reports it, then accepts for real. Tests use it for the errors a real
// test cannot cause: Go's own Accept retries ECONNABORTED on Linux, and
// filling the system's file table (ENFILE) would starve the machine. It
// notes when each Accept was called, so a test can measure the pauses.
type failingListener struct {
	net.Listener
	errno syscall.Errno
	mu    sync.Mutex
	fails int
	calls []time.Time
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.calls = append(l.calls, time.Now())
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(),
			Err: os.NewSyscallError("accept", l.errno)}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func (l *failingListener) times() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.calls...)
}

func TestAcceptLoopSurvivesAClientThatAbortedInTheBacklog(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	out := newLines()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- acceptLoop(ctx, &failingListener{Listener: ln, errno: syscall.ECONNABORTED, fails: 3}, config{idle: wait, grace: wait}, out)
	}()

	// Three failed Accepts, then this client is served as usual.
	c := connect(t, ln.Addr().String())
	c.greeted()
	assert.Equal(t, "OK...hello\n", c.ask("hello\n"))
	c.leave()

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "a client that gave up is no reason to stop")
	case <-time.After(wait):
		t.Fatal("the accept loop did not stop")
	}
	log := out.String()
	assert.Equal(t, 1, strings.Count(log, "accept failed, retrying with back-off"), "one line for the streak:\n%s", log)
	assert.Equal(t, 1, strings.Count(log, "accepting again after 3 failed attempts"), log)
}

func TestAcceptLoopBacksOffWhenTheSystemRunsOutOfFiles(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	// The client connects first and waits in the backlog while the
	// whole system is out of files (ENFILE): three Accepts fail.
	c := connect(t, ln.Addr().String())
	fake := &failingListener{Listener: ln, errno: syscall.ENFILE, fails: 3}
	out := newLines()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- acceptLoop(ctx, fake, config{idle: wait, grace: wait}, out)
	}()

	// Once Accept works again, the waiting client is served.
	c.greeted()
	assert.Equal(t, "OK...hello\n", c.ask("hello\n"))
	c.leave()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "running out of files is no reason to stop")
	case <-time.After(wait):
		t.Fatal("the accept loop did not stop")
	}

	// It took the same path as EMFILE: one line with the EMFILE hint,
	// pauses of at least 5, 10 and 20 ms, and one line when it is over.
	log := out.String()
	assert.Equal(t, 1, strings.Count(log, "accept failed, retrying with back-off"), "one line for the streak:\n%s", log)
	assert.Contains(t, log, syscall.ENFILE.Error()+": the whole system is out of open files, not just this program")
	assert.Contains(t, log, "(see docs/errors.md#emfile)")
	assert.Equal(t, 1, strings.Count(log, "accepting again after 3 failed attempts"), log)
	calls := fake.times()
	require.GreaterOrEqual(t, len(calls), 4, "three failed Accepts, then the real one")
	for i, pause := range []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond} {
		assert.GreaterOrEqual(t, calls[i+1].Sub(calls[i]), pause, "pause after failure %d", i+1)
	}
}
