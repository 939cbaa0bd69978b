package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// ---- the Server and its handlers: socketserver in Go ----

func TestSequentialServesOneClientAtATime(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0", "-sequential")
	first, firstReplies := dialLines(t, srv.addr)
	assert.Equal(t, "FIRST", askLine(t, first, firstReplies, "first"))

	// The kernel completes the second connection (it sits in the
	// backlog), but nobody reads it while the first client is served.
	second, secondReplies := dialLines(t, srv.addr)
	_, err := io.WriteString(second, "second\n")
	require.NoError(t, err)
	assertNothingArrives(t, second, secondReplies)

	first.Close()
	require.NoError(t, second.SetReadDeadline(time.Now().Add(wait)))
	reply, err := secondReplies.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "SECOND\n", reply)
}

func TestServesClientsConcurrentlyByDefault(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	first, firstReplies := dialLines(t, srv.addr)
	assert.Equal(t, "FIRST", askLine(t, first, firstReplies, "first"))

	// The first client is still connected, and the second is served.
	second, secondReplies := dialLines(t, srv.addr)
	assert.Equal(t, "SECOND", askLine(t, second, secondReplies, "second"))
	assert.Equal(t, "FIRST AGAIN", askLine(t, first, firstReplies, "first again"))
}

func TestHandleOneServesExactlyOneClient(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	defer ln.Close()
	srv := NewTCPServer("", HandlerFunc(upper))
	done := make(chan error, 1)
	go func() { done <- srv.HandleOne(ln) }()

	conn, replies := dialLines(t, ln.Addr().String())
	assert.Equal(t, "ONE", askLine(t, conn, replies, "one"))
	conn.Close()
	require.NoError(t, receive(t, done))

	// The listener is still open, but nobody accepts: a second client
	// waits in the backlog unanswered.
	second, secondReplies := dialLines(t, ln.Addr().String())
	_, err = io.WriteString(second, "two\n")
	require.NoError(t, err)
	assertNothingArrives(t, second, secondReplies)
}

func TestListenAndServeReturnsErrServerClosedAfterShutdown(t *testing.T) {
	srv := NewThreadingTCPServer("127.0.0.1:0", HandlerFunc(upper))
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe() }()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))
	assert.ErrorIs(t, receive(t, done), ErrServerClosed)
}

func TestShutdownReturnsOnceHandlersEnd(t *testing.T) {
	entered := make(chan struct{})
	h := HandlerFunc(func(conn net.Conn) {
		close(entered)
		// Like any handler: read until the server says stop.
		io.Copy(io.Discard, conn)
	})
	srv, addr := serveServer(t, NewThreadingTCPServer("", h))
	hangUpOnEOF(dial(t, addr))
	receive(t, entered)

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start := time.Now()
	require.NoError(t, srv.Shutdown(ctx))
	assert.Less(t, time.Since(start), wait/2, "Shutdown should return as soon as the handler did")
}

func TestShutdownGivesUpAtItsDeadline(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	// This handler ignores the connection and waits for the test.
	h := HandlerFunc(func(net.Conn) {
		close(entered)
		<-release
	})
	srv, addr := serveServer(t, NewThreadingTCPServer("", h))
	t.Cleanup(func() { close(release) })
	dial(t, addr)
	receive(t, entered)

	// The clock starts before the deadline is set: timed from after it,
	// the wait can honestly come out a hair under 100ms (seen when the
	// Windows build ran under Wine).
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := srv.Shutdown(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	assert.Less(t, time.Since(start), wait)
}

func TestCloseDropsEveryConnectionAtOnce(t *testing.T) {
	srv, addr := serveServer(t, NewThreadingTCPServer("", HandlerFunc(upper)))
	conn, replies := dialLines(t, addr)
	assert.Equal(t, "HI", askLine(t, conn, replies, "hi"))
	require.NoError(t, srv.Close())
	// No farewell and no waiting: the connection just ends.
	_, err := replies.ReadString('\n')
	assert.Error(t, err)
}

func TestHandlerPanicLosesOnlyItsClient(t *testing.T) {
	h := HandlerFunc(func(conn net.Conn) {
		line, _ := bufio.NewReader(conn).ReadString('\n')
		if line == "panic\n" {
			panic("handler bug")
		}
		io.WriteString(conn, "fine\n")
	})
	_, addr := serveServer(t, NewThreadingTCPServer("", h))
	bad := dial(t, addr)
	_, err := io.WriteString(bad, "panic\n")
	require.NoError(t, err)
	_, err = io.ReadAll(bad)
	_ = err // closed or reset: either way that client is gone

	good, replies := dialLines(t, addr)
	assert.Equal(t, "fine", askLine(t, good, replies, "hello"))
}

func TestAcceptLoopRetriesPassingErrorsAndLogsOnce(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	aborted := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.ECONNABORTED)}
	flaky := &flakyListener{Listener: ln, errs: []error{emfile, emfile, aborted, emfile}}

	out := newLines()
	srv := NewThreadingTCPServer("", HandlerFunc(upper))
	srv.Log = newLogger(out)
	_, addr := serveServer(t, srv, flaky)
	out.next(t) // listening on

	conn, replies := dialLines(t, addr)
	assert.Equal(t, "STILL SERVING", askLine(t, conn, replies, "still serving"))
	accepts := regexp.MustCompile(`(?m)^accept: `).FindAllString(out.String(), -1)
	assert.Len(t, accepts, 1, "one line per episode of running out of descriptors:\n%s", out.String())
}

func TestAcceptLoopBacksOffWhenTheSystemRunsOutOfFiles(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	// ENFILE: the whole system's file table is full. Filling it for
	// real would starve every program on the machine, so the listener
	// stands in for the kernel. The client connects first and waits in
	// the backlog while three Accepts fail.
	conn, replies := dialLines(t, ln.Addr().String())
	enfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.ENFILE)}
	flaky := &flakyListener{Listener: ln, errs: []error{enfile, enfile, enfile}}

	out := newLines()
	srv := NewThreadingTCPServer("", HandlerFunc(upper))
	srv.Log = newLogger(out)
	serveServer(t, srv, flaky)
	out.next(t) // listening on

	// Once Accept works again, the waiting client is served.
	assert.Equal(t, "STILL HERE", askLine(t, conn, replies, "still here"))

	// It took the same path as EMFILE: one line for the episode, with
	// the EMFILE hint, and pauses of at least 5, 10 and 20 ms.
	accepts := regexp.MustCompile(`(?m)^accept: .*`).FindAllString(out.String(), -1)
	require.Len(t, accepts, 1, "one line per episode of running out of descriptors:\n%s", out.String())
	assert.Contains(t, accepts[0], syscall.ENFILE.Error()+"; retrying until descriptors free up (see docs/errors.md#emfile)")
	calls := flaky.times()
	require.GreaterOrEqual(t, len(calls), 4, "three failed Accepts, then the real one")
	for i, pause := range []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond} {
		assert.GreaterOrEqual(t, calls[i+1].Sub(calls[i]), pause, "pause after failure %d", i+1)
	}
}

// ---- message boundaries: length-prefixed frames ----

func TestFramedRepliesSurviveOneByteReads(t *testing.T) {
	var stream bytes.Buffer
	for _, reply := range []string{"first reply\n", "", "third\n"} {
		require.NoError(t, writeFrame(&stream, []byte(reply)))
	}
	// OneByteReader hands out one byte per Read: the worst split TCP
	// could deliver.
	r := iotest.OneByteReader(&stream)
	for _, want := range []string{"first reply\n", "", "third\n"} {
		got, err := readFrame(r)
		require.NoError(t, err)
		assert.Equal(t, want, string(got))
	}
	_, err := readFrame(r)
	assert.ErrorIs(t, err, io.EOF, "a stream that ends between frames ends cleanly")
}

func TestReadFrameSeparatesMergedReplies(t *testing.T) {
	// Two replies written back to back arrive in one Read as often as
	// not; the length says where the first one ends.
	stream := []byte("\x00\x00\x00\x03one\x00\x00\x00\x03two")
	r := bytes.NewReader(stream)
	first, err := readFrame(r)
	require.NoError(t, err)
	second, err := readFrame(r)
	require.NoError(t, err)
	assert.Equal(t, []string{"one", "two"}, []string{string(first), string(second)})
}

func TestReadFrameReportsAStreamCutInsideAFrame(t *testing.T) {
	_, err := readFrame(bytes.NewReader([]byte("\x00\x00\x00\x09cut")))
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	_, err = readFrame(bytes.NewReader([]byte("\x00\x00")))
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

func TestReadFrameRefusesAHugeLengthBeforeAllocating(t *testing.T) {
	allocs := testing.AllocsPerRun(10, func() {
		_, err := readFrame(bytes.NewReader([]byte("\xff\xff\xff\xff")))
		if !errors.Is(err, errFrameTooLarge) {
			t.Errorf("want errFrameTooLarge, got %v", err)
		}
	})
	// A few small allocations for the error; nothing near 4 GB.
	assert.Less(t, allocs, 10.0)
}

// ---- the command service: an allowlist, never a shell ----

func TestCmdRunsWhoamiAndItMatchesTheCurrentUser(t *testing.T) {
	me, err := user.Current()
	require.NoError(t, err)
	srv := startServer(t, "-addr", "127.0.0.1:0", "-handler", "cmd")
	conn, replies := dialFrames(t, srv.addr)
	got := strings.TrimSpace(askFrame(t, conn, replies, "whoami"))
	// Windows' whoami prints "domain\user" in lower case.
	assert.True(t, strings.EqualFold(me.Username, got), "whoami said %q, os/user says %q", got, me.Username)
}

func TestRefusedCommandNeverReachesTheSystem(t *testing.T) {
	rec := &recorder{}
	addr := serveCmd(t, rec.run)
	conn, replies := dialFrames(t, addr)
	for _, line := range []string{
		"rm -rf /",
		"date; rm -rf /",     // ";" is part of the name "date;"
		"$(reboot)",          // no shell, so no command substitution
		"`id`",               // nor backticks
		"sh -c date",         // a shell is just another unlisted program
		"/bin/date",          // a path is not a listed name
		"hostname evil",      // hostname NAME renames the machine
		"date -s 00:00",      // date -s sets the clock
		"whoami > /etc/motd", // no redirection either: extra arguments are refused
		"",
	} {
		reply := askFrame(t, conn, replies, line)
		assert.True(t, strings.HasPrefix(reply, "refused: "), "%q: got %q", line, reply)
	}
	assert.Empty(t, rec.calls(), "a refused command must never be run")
}

func TestShellMetacharactersArePassedLiterally(t *testing.T) {
	rec := &recorder{out: []byte("ok\n")}
	addr := serveCmd(t, rec.run)
	conn, replies := dialFrames(t, addr)
	assert.Equal(t, "ok\n", askFrame(t, conn, replies, "echo $(whoami); rm -rf / | cat *"))
	assert.Equal(t, [][]string{{"echo", "$(whoami);", "rm", "-rf", "/", "|", "cat", "*"}}, rec.calls(),
		"echo gets each word as it was typed, untouched by any shell")
}

func TestRealEchoPrintsShellMetacharactersLiterally(t *testing.T) {
	skipWithoutEcho(t)
	srv := startServer(t, "-addr", "127.0.0.1:0", "-handler", "cmd")
	conn, replies := dialFrames(t, srv.addr)
	assert.Equal(t, "$(whoami); rm -rf /\n", askFrame(t, conn, replies, "echo $(whoami); rm -rf /"))
}

func TestConnectionStaysUsableAfterARefusal(t *testing.T) {
	rec := &recorder{out: []byte("still here\n")}
	addr := serveCmd(t, rec.run)
	conn, replies := dialFrames(t, addr)
	assert.True(t, strings.HasPrefix(askFrame(t, conn, replies, "reboot"), "refused: "))
	assert.Equal(t, "still here\n", askFrame(t, conn, replies, "uptime"))
}

func TestEmptyOutputGetsAnExplicitReply(t *testing.T) {
	rec := &recorder{out: nil}
	addr := serveCmd(t, rec.run)
	conn, replies := dialFrames(t, addr)
	assert.Equal(t, "(no output)\n", askFrame(t, conn, replies, "echo -n"))
}

func TestCommandOverItsTimeLimitIsStopped(t *testing.T) {
	// This stand-in for a program runs until it is told to stop.
	slow := func(ctx context.Context, _ string, _ []string) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	addr := serveHandler(t, &cmdHandler{run: slow, timeout: 50 * time.Millisecond}, false)
	conn, replies := dialFrames(t, addr)
	assert.Equal(t, "error: date did not finish within 50ms and was stopped\n", askFrame(t, conn, replies, "date"))
}

func TestRunProgramKillsAProgramAtItsTimeLimit(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program here (Windows has none)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = runProgram(ctx, sleep, []string{"10"})
	require.Error(t, err)
	assert.Less(t, time.Since(start), wait, "the program should have been killed at 50ms")
}

func TestMissingProgramIsReportedAsUnavailable(t *testing.T) {
	_, err := runProgram(context.Background(), "no-such-program-08-socketserver", nil)
	require.ErrorIs(t, err, exec.ErrNotFound)

	// uptime is on the allowlist but, on Windows for one, not installed.
	missing := func(context.Context, string, []string) ([]byte, error) { return nil, err }
	addr := serveCmd(t, missing)
	conn, replies := dialFrames(t, addr)
	assert.Equal(t, "unavailable: uptime is not installed on this machine\n", askFrame(t, conn, replies, "uptime"))
}

func TestCappedOutputKeepsMemoryBounded(t *testing.T) {
	b := &cappedBuffer{max: 10}
	n, err := b.Write(bytes.Repeat([]byte("y"), 100))
	require.NoError(t, err)
	assert.Equal(t, 100, n, "the program must not see a failed write")
	assert.Equal(t, 10, b.buf.Len())
}

func TestCmdOnAnotherInterfaceWarnsOnStderr(t *testing.T) {
	// 192.0.2.1 is reserved for documentation and is none of this
	// machine's addresses, so the warning is printed and then listening
	// fails: the test never exposes the command service to a network.
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-handler", "cmd", "-addr", "192.0.2.1:0"}, nil, io.Discard, &stderr)
	require.Error(t, err)
	assert.Contains(t, stderr.String(), "warning: -handler cmd on 192.0.2.1:0 lets anyone who can reach this port run commands on this machine")
	assert.Contains(t, explain(err), "(see docs/errors.md#eaddrnotavail)")

	for _, addr := range []string{"127.0.0.1:9008", "[::1]:9008", "localhost:9008"} {
		assert.True(t, isLoopback(addr), addr)
	}
	for _, addr := range []string{"0.0.0.0:9008", ":9008", "192.168.1.2:9008"} {
		assert.False(t, isLoopback(addr), addr)
	}
}

// ---- the whole program, with the upper handler ----

func TestPrintsTheAddressItReallyListensOn(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	assert.NotEqual(t, "0", portOf(t, srv.addr))
}

func TestDefaultAddressIsLoopbackPort9008(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-h"}, nil, io.Discard, &stderr)
	assert.ErrorIs(t, err, flag.ErrHelp)
	assert.Contains(t, stderr.String(), `(default "127.0.0.1:9008")`)
}

func TestUpperAnswersEachLineInUpperCase(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	conn, replies := dialLines(t, srv.addr)
	assert.Equal(t, "HELLO", askLine(t, conn, replies, "hello"))
	assert.Equal(t, "SOCKET SERVER", askLine(t, conn, replies, "socket server"))
	// telnet ends lines with "\r\n"; the "\r" is not part of the line.
	assert.Equal(t, "TELNET", askLine(t, conn, replies, "telnet\r"))
}

func TestUpperPassesBytesThatAreNotUTF8ThroughUnchanged(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	conn, replies := dialLines(t, srv.addr)
	// The longest line there is, of bytes that are not UTF-8: the reply
	// is exactly as long, not three times (U+FFFD for each byte).
	line := bytes.Repeat([]byte{0xff}, maxLine-1)
	_, err := conn.Write(append(line, '\n'))
	require.NoError(t, err)
	reply := make([]byte, maxLine)
	_, err = io.ReadFull(replies, reply)
	require.NoError(t, err)
	assert.Equal(t, append(line, '\n'), reply)

	// Only ASCII letters change, as with Python's bytes.upper(); the
	// next reply follows at once, so nothing was left over.
	assert.Equal(t, "éTé 2026 Ü-BAHN", askLine(t, conn, replies, "éTé 2026 Ü-bahn"))
}

func TestLastLineWithoutNewlineIsAnsweredAtEOF(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	conn := dial(t, srv.addr)
	_, err := conn.Write([]byte("no newline"))
	require.NoError(t, err)
	require.NoError(t, conn.(*net.TCPConn).CloseWrite())
	reply, err := io.ReadAll(conn)
	require.NoError(t, err, "the server should close with FIN, not reset")
	assert.Equal(t, "NO NEWLINE\n", string(reply))
}

func TestLineSentOneByteAtATimeIsAnsweredWhole(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	conn, replies := dialLines(t, srv.addr)
	// Go turns Nagle's algorithm off, so each one-byte Write leaves as
	// its own segment: the server's reads see the line in pieces.
	for _, b := range []byte("byte by byte\n") {
		_, err := conn.Write([]byte{b})
		require.NoError(t, err)
	}
	reply, err := replies.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "BYTE BY BYTE\n", reply)
}

func TestTooLongLineGetsAnErrorReplyNotUnboundedMemory(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	conn := dial(t, srv.addr)
	// Ten times the limit, and no newline: a reader that grew its buffer
	// to find the end of the line would hold all of it.
	_, err := conn.Write(bytes.Repeat([]byte("x"), 10*maxLine))
	require.NoError(t, err)
	reply, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "error: line longer than 4096 bytes, closing\n", reply)
}

func TestStopWithoutClientsExitsCleanly(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	srv.stop()
	require.NoError(t, srv.wait(t))
	assert.Equal(t, "shutting down", srv.out.next(t))
	assert.Equal(t, "stopped", srv.out.next(t))
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
		{"-handler", "shell"},
		{"-max-conns", "0"},
		{"-idle-timeout", "0s"},
		{"-max-conns-per-ip", "-1"},
		{"-message-timeout", "0s"},
		{"-max-programs", "0"},
		{"extra-argument"},
	} {
		var stderr bytes.Buffer
		err := run(context.Background(), args, nil, io.Discard, &stderr)
		assert.ErrorIs(t, err, errUsage, "args %q", args)
		assert.NotEmpty(t, stderr.String(), "args %q should say what is wrong", args)
	}
}

// ---- the client ----

func TestUpperClientSendsEachLineAndPrintsTheReply(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	var out bytes.Buffer
	err := runWithTimeout(t, []string{"-client", "-addr", srv.addr}, strings.NewReader("one\ntwo\n"), &out)
	require.NoError(t, err)
	assert.Equal(t, "ONE\nTWO\n", out.String())
}

func TestClientReportsConnectionRefused(t *testing.T) {
	addr := closedPort(t)
	err := runWithTimeout(t, []string{"-client", "-addr", addr}, strings.NewReader("hi\n"), io.Discard)
	require.Error(t, err)
	assert.True(t, isErrno(err, syscall.ECONNREFUSED), "want ECONNREFUSED, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#econnrefused)")
}

func TestCmdClientPrintsFramesThatArriveOneByteAtATime(t *testing.T) {
	// A stand-in server that dribbles its framed reply out one byte per
	// write: the client must still print exactly one whole reply.
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(wait))
		bufio.NewReader(conn).ReadString('\n')
		var frame bytes.Buffer
		writeFrame(&frame, []byte("split\nacross many reads\n"))
		for _, b := range frame.Bytes() {
			if _, err := conn.Write([]byte{b}); err != nil {
				return
			}
		}
	}()

	var out bytes.Buffer
	err = runWithTimeout(t, []string{"-client", "-handler", "cmd", "-addr", ln.Addr().String()}, strings.NewReader("anything\n"), &out)
	require.NoError(t, err)
	assert.Equal(t, "split\nacross many reads\n", out.String())
}

func TestCmdClientRejectsAServerThatDoesNotSpeakFrames(t *testing.T) {
	// The upper server answers "HELLO\n"; read as a frame header, "HELL"
	// claims more than a gigabyte, which the client refuses to allocate.
	srv := startServer(t, "-addr", "127.0.0.1:0")
	err := runWithTimeout(t, []string{"-client", "-handler", "cmd", "-addr", srv.addr}, strings.NewReader("hello\n"), io.Discard)
	require.Error(t, err)
	assert.ErrorIs(t, err, errFrameTooLarge)
	assert.Contains(t, explain(err), "frame larger than 1048576 bytes: the header says 1212501068")
	assert.Contains(t, explain(err), "(see docs/errors.md#emsgsize)")
}

func TestClientPrintsTheServersByeThenSaysOnceThatItClosed(t *testing.T) {
	for _, handler := range []string{"upper", "cmd"} {
		t.Run(handler, func(t *testing.T) {
			srv := startServer(t, "-addr", "127.0.0.1:0", "-handler", handler, "-idle-timeout", "100ms")
			// stdin stays open, as at a terminal where the user has
			// stopped typing: the server's farewell must still show.
			stdin, typing := io.Pipe()
			defer typing.Close()
			cl := startClient(t, stdin, "-client", "-handler", handler, "-addr", srv.addr)
			_, err := io.WriteString(typing, "nope\n")
			require.NoError(t, err)

			require.NoError(t, cl.wait(t))
			want := map[string]string{
				"upper": "NOPE\n",
				"cmd":   "refused: \"nope\" is not an allowed command; allowed: date, echo, hostname, uptime, whoami\n",
			}[handler]
			assert.Equal(t, want+"bye: idle for 100ms, closing\n", cl.stdout.String())
			assert.Equal(t, "server closed the connection\n", cl.stderr.String())
		})
	}
}

func TestClientWithInputLeftSaysTheServerClosedAndNothingElse(t *testing.T) {
	// A stand-in server answers one line, says goodbye and closes, while
	// the client still has two lines to send.
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		conn.SetDeadline(time.Now().Add(wait))
		bufio.NewReader(conn).ReadString('\n')
		io.WriteString(conn, "ONE\nbye: going away\n")
		closeGracefully(conn)
	}()

	cl := startClient(t, strings.NewReader("one\ntwo\nthree\n"), "-client", "-addr", ln.Addr().String())
	require.NoError(t, cl.wait(t), "the server closing is not the client's failure")
	assert.Equal(t, "ONE\nbye: going away\n", cl.stdout.String())
	assert.Equal(t, "server closed the connection\n", cl.stderr.String(), "one line, and no broken pipe")
}

func TestClientStopsSilentlyOnCtrlC(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	stdin, typing := io.Pipe()
	defer typing.Close()
	cl := startClient(t, stdin, "-client", "-addr", srv.addr)
	_, err := io.WriteString(typing, "hello\n")
	require.NoError(t, err)
	assert.Equal(t, "HELLO", cl.stdout.next(t))

	cl.stop() // what Ctrl+C does to run
	require.NoError(t, cl.wait(t))
	assert.Empty(t, cl.stderr.String())
}

func TestLineClientSaysClearlyThatItCannotReadFrames(t *testing.T) {
	// The cmd server's reply starts with its 4-byte length; printed as a
	// line, that would be raw bytes on the terminal.
	srv := startServer(t, "-addr", "127.0.0.1:0", "-handler", "cmd")
	cl := startClient(t, strings.NewReader("hostname\n"), "-client", "-addr", srv.addr)
	err := cl.wait(t)
	require.ErrorIs(t, err, errFramedReply)
	assert.Empty(t, cl.stdout.String(), "no raw frame on the terminal")
	assert.Contains(t, explain(err), ": the server speaks frames; give -client the server's -handler, here -handler cmd (see docs/errors.md#emsgsize)")
}

func TestClientGivesUpOnAServerThatNeverAnswers(t *testing.T) {
	// A stand-in server that accepts, reads, and never says a word.
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(wait))
		io.Copy(io.Discard, conn)
	}()
	stdin, typing := io.Pipe()
	defer typing.Close()
	cl := startClient(t, stdin, "-client", "-addr", ln.Addr().String(), "-idle-timeout", "100ms")
	_, err = io.WriteString(typing, "anyone?\n")
	require.NoError(t, err)
	err = cl.wait(t)
	require.Error(t, err)
	assert.Contains(t, explain(err), ": no answer in time (see docs/errors.md#timeout)")
}

func TestAddressWithoutAHostGetsAHint(t *testing.T) {
	for _, mode := range [][]string{nil, {"-client"}} {
		err := run(context.Background(), append(mode, "-addr", "9008"), strings.NewReader(""), io.Discard, io.Discard)
		require.Error(t, err)
		verb := map[bool]string{false: "listen on", true: "connect to"}[len(mode) > 0]
		assert.Equal(t, verb+" 9008: address 9008: missing port in address (write host:port, e.g. 127.0.0.1:9008 or :9008)", explain(err))
	}
}

// ---- real tools ----

func TestWorksWithNetcat(t *testing.T) {
	nc := lookTool(t, "nc")
	srv := startServer(t, "-addr", "127.0.0.1:0")
	host, port, _ := net.SplitHostPort(srv.addr)
	got := talkTo(t, srv, nc, host, port)
	assert.Equal(t, "HI FROM NC\nbye: server shutting down\n", got)
}

func TestWorksWithTelnet(t *testing.T) {
	telnet := lookTool(t, "telnet")
	srv := startServer(t, "-addr", "127.0.0.1:0")
	host, port, _ := net.SplitHostPort(srv.addr)
	got := talkTo(t, srv, telnet, host, port)
	// telnet adds its own "Trying..." lines; it sent "\r\n", which the
	// server treats as the end of the line.
	assert.Contains(t, got, "HI FROM TELNET\nbye: server shutting down\n")
}

// ---- README transcripts ----

func TestReadmeServerTranscript(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	var out bytes.Buffer
	require.NoError(t, runWithTimeout(t, []string{"-client", "-addr", srv.addr}, strings.NewReader("hello\nsocket server\n"), &out))
	assertTranscript(t, "upper-client", out.String())
	waitForLine(t, srv.out, "left")
	srv.stop()
	require.NoError(t, srv.wait(t))
	assertTranscript(t, "upper-server", srv.out.String())
}

func TestReadmeCmdTranscript(t *testing.T) {
	skipWithoutEcho(t)
	me, err := user.Current()
	require.NoError(t, err)
	srv := startServer(t, "-addr", "127.0.0.1:0", "-handler", "cmd")
	input := "echo hello\nwhoami\nrm -rf /\necho $(whoami); rm -rf /\nhostname new-name\necho -n\n"
	var out bytes.Buffer
	require.NoError(t, runWithTimeout(t, []string{"-client", "-handler", "cmd", "-addr", srv.addr}, strings.NewReader(input), &out))

	// whoami prints your user name; the README shows "alice". The test
	// checks the real name against os/user, then puts "alice" in its place.
	lines := strings.Split(out.String(), "\n")
	require.Greater(t, len(lines), 2)
	require.Equal(t, me.Username, lines[1])
	lines[1] = "alice"
	assertTranscript(t, "cmd-client", strings.Join(lines, "\n"))

	waitForLine(t, srv.out, "left")
	srv.stop()
	require.NoError(t, srv.wait(t))
	assertTranscript(t, "cmd-server", srv.out.String())
}

func TestReadmeFrameOnTheWireTranscript(t *testing.T) {
	lookTool(t, "nc")
	for _, tool := range []string{"sh", "od"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s here", tool)
		}
	}
	skipWithoutEcho(t)
	srv := startServer(t, "-addr", "127.0.0.1:0", "-handler", "cmd")
	host, port, _ := net.SplitHostPort(srv.addr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	// The same pipeline as the README: nc -N half-closes after its input,
	// so the server sees the end and closes, and nc exits.
	pipeline := "printf 'echo hi\\n' | nc -N " + host + " " + port + " | od -An -c"
	got, err := exec.CommandContext(ctx, "sh", "-c", pipeline).Output()
	if err != nil {
		t.Skipf("%s failed (%v): this nc may lack -N (macOS's does)", pipeline, err)
	}
	assertTranscript(t, "frame-on-the-wire", string(got))
}

func TestReadmeAddressInUseTranscript(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	defer ln.Close()
	err = run(context.Background(), []string{"-addr", ln.Addr().String()}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	got := "error: " + explain(err) + "\n"
	// Windows words the system's error its own way ("Only one usage of
	// each socket address ..."); the README shows Linux's words. Only
	// those words are swapped: everything around them must still match.
	if runtime.GOOS == "windows" {
		var errno syscall.Errno
		require.True(t, errors.As(err, &errno), "want a system error number in %v", err)
		require.True(t, isErrno(errno, syscall.EADDRINUSE), "want WSAEADDRINUSE, got %d", errno)
		got = strings.Replace(got, errno.Error(), syscall.EADDRINUSE.Error(), 1)
	}
	assertTranscript(t, "address-in-use", got)
}
