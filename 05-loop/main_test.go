package main

import (
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

func TestSecondClientIsNotGreetedWhileTheFirstIsConnected(t *testing.T) {
	srv := startServer(t)
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

func TestLongMessageComesBackInChunksOfAtMost16KiB(t *testing.T) {
	srv := startServer(t)
	c := connect(t, srv.addr)
	c.greeted()
	msg := strings.Repeat("0123456789", 4000) // 40000 bytes, no "OK..." inside
	got := c.ask(msg)

	// One Read takes at most 16384 bytes, so 40000 bytes are at least
	// three chunks, each answered on its own.
	chunks := strings.Split(got, "OK...")[1:]
	assert.GreaterOrEqual(t, len(chunks), 3)
	for _, chunk := range chunks {
		assert.LessOrEqual(t, len(chunk), 16384)
		assert.NotEmpty(t, chunk, "no empty chunk is ever answered")
	}
	assert.Equal(t, msg, strings.Join(chunks, ""))
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

// The deadlines are set once and moved only when they pass early, and
// -idle-timeout means what it says: a client that talks through several
// idle timeouts is served throughout, and once silent it is closed no
// sooner than -idle-timeout after its last message.
func TestTalkingClientOutlivesTheIdleTimeoutAndIsClosedOnceSilent(t *testing.T) {
	const idle = 400 * time.Millisecond
	srv := startServer(t, "-idle-timeout", idle.String())
	c := connect(t, srv.addr)
	c.greeted()
	var last time.Time
	for begin := time.Now(); time.Since(begin) < 3*idle; {
		<-time.After(idle / 8) // a message now and then: never idle
		last = time.Now()
		c.ask("still here\n")
	}
	assert.Equal(t, fmt.Sprintf("bye: idle for %v, closing\n", idle), c.rest())
	assert.GreaterOrEqual(t, time.Since(last), idle, "closed only after -idle-timeout of silence")
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

func TestClientsInTheBacklogAreServedOneAtATime(t *testing.T) {
	// This server serves one client at a time; every other client waits
	// in the kernel's backlog, connected but not greeted, and is never
	// told "server full".
	srv := startServer(t)
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

func TestAcceptLoopStopsWhenTheListenerItselfFails(t *testing.T) {
	// An error that no retry can cure (here EINVAL: a socket that is not
	// listening) ends the loop with that error, rather than a back-off
	// that would retry it forever.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	fake := &failingListener{Listener: ln, errno: syscall.EINVAL, fails: 1}
	done := make(chan error, 1)
	go func() { done <- acceptLoop(context.Background(), fake, config{idle: wait, grace: wait}, newLines()) }()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, syscall.EINVAL)
		assert.Len(t, fake.times(), 1, "no retry")
	case <-time.After(wait):
		t.Fatal("the accept loop did not stop on an error that no retry can cure")
	}
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

// Go's net turns TCP keep-alive on for every accepted connection, four
// setsockopt calls each; -idle-timeout finds a client that vanished
// anyway, so the server listens with keep-alive off.
func TestAcceptedConnectionsHaveKeepAliveOff(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads the kernel's table of TCP sockets, /proc/net/tcp, which is Linux's")
	}
	srv := startServer(t)
	c := connect(t, srv.addr)
	c.greeted()
	assert.False(t, keepAliveTimer(t, c.conn), "a keep-alive timer on the server's side of the connection")
}

// The ladder in steps/ ends at this program: its last step serves a
// client with this program's code, declaration by declaration, so the
// two cannot drift apart. What differs is in the README: here handle and
// acceptLoop explain errors, and serve listens where the step's main does.
// (The step's greeting has no doc comment.)
func TestTheLastStepServesClientsWithThisProgramsCode(t *testing.T) {
	step := declarations(t, "steps/8-cost-per-message/main.go", "steps/8-cost-per-message/logqueue.go")
	here := declarations(t, "main.go", "closing.go", "logqueue.go")
	here["config"] = declarations(t, "cli.go")["config"]
	here["greeting"] = here["greeting"][strings.Index(here["greeting"], "const"):]
	for _, differs := range []string{"serve", "acceptLoop", "handle"} {
		require.Contains(t, here, differs)
		delete(here, differs)
	}
	for name, code := range here {
		assert.Equal(t, code, step[name], "%s differs between the last step and the finished program", name)
	}
	assert.Len(t, here, 20, "the number of declarations compared")
}

// The README promises that main.go is the server, read top to bottom,
// in at most 250 lines; the rest of the program lives in the other files.
func TestMainGoIsTheServerInAtMost250Lines(t *testing.T) {
	src, err := os.ReadFile("main.go")
	require.NoError(t, err)
	assert.LessOrEqual(t, bytes.Count(src, []byte("\n")), 250, "lines in main.go")
}

func TestBadFlagsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-no-such-flag"},
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

func TestBusyAddressFailsWithAddressInUse(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	defer ln.Close()

	err = run(context.Background(), []string{"-addr", ln.Addr().String()}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.True(t, is(err, syscall.EADDRINUSE), "want EADDRINUSE, got %v", err)
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
	assert.True(t, is(err, syscall.ECONNREFUSED), "want ECONNREFUSED, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#econnrefused)")
}

func TestClientPrintsTheServersGoodbyeAndSaysOnceThatItClosed(t *testing.T) {
	srv := startServer(t, "-idle-timeout", "200ms")
	// Standard input stays open, as a terminal does while you think: the
	// server's idle timeout ends the conversation first.
	stdin, typing := io.Pipe()
	t.Cleanup(func() { typing.Close() })
	client := startClient(t, []string{"-addr", srv.addr}, stdin)
	err := client.wait(t)
	require.NoError(t, err, "a server that closes is no failure of the client's")
	// The goodbye is printed as the server's own line, then one line on
	// stderr says what happened.
	assert.Equal(t, greeting+"bye: idle for 200ms, closing\n", client.stdout.String())
	assert.Equal(t, "server closed the connection\n", client.stderr.String())
}

func TestClientStopsQuietlyOnCtrlC(t *testing.T) {
	t.Run("while it waits for its turn", func(t *testing.T) {
		srv := startServer(t)
		connect(t, srv.addr).greeted() // and stays connected
		client := startClient(t, []string{"-addr", srv.addr}, strings.NewReader("hi\n"))
		client.stop()
		require.NoError(t, client.wait(t))
		assert.Empty(t, client.stdout.String())
		assert.Empty(t, client.stderr.String())
	})
	t.Run("while it waits for input", func(t *testing.T) {
		srv := startServer(t)
		stdin, typing := io.Pipe()
		t.Cleanup(func() { typing.Close() })
		client := startClient(t, []string{"-addr", srv.addr}, stdin)
		client.stdout.waitForLine(t, strings.TrimSuffix(greeting, "\n"))
		client.stop()
		require.NoError(t, client.wait(t))
		assert.Equal(t, greeting, client.stdout.String())
		assert.Empty(t, client.stderr.String())
	})
}

func TestAddressWithoutAHostGetsAHint(t *testing.T) {
	for _, args := range [][]string{{"-addr", "9005"}, {"-client", "-addr", "9005"}} {
		err := runWithTimeout(t, args, strings.NewReader(""), io.Discard)
		require.Error(t, err)
		want := "listen on 9005: "
		if args[0] == "-client" {
			want = "connect to 9005: "
		}
		assert.Equal(t, want+"address 9005: missing port in address (write host:port, e.g. 127.0.0.1:9005 or :9005)", explain(err))
	}
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
		require.True(t, is(errno, syscall.EADDRINUSE), "want WSAEADDRINUSE, got %v", errno)
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
