package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

func TestPrintsTheAddressItReallyListensOn(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	// Port 0 asks the kernel for any free port; the program must print
	// the one it got, or nobody could connect.
	assert.NotEqual(t, "0", portOf(t, srv.addr))
	conn := dial(t, srv.addr)
	conn.Close()
}

func TestEchoesOneMessageThenExits(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	conn := dial(t, srv.addr)

	_, err := conn.Write([]byte("hello\n"))
	require.NoError(t, err)
	reply, err := io.ReadAll(conn) // until the server closes
	require.NoError(t, err, "the server should close with FIN, not reset")
	assert.Equal(t, "hello\n", string(reply))
	conn.Close() // a polite client closes when it reads the end

	require.NoError(t, srv.wait(t), "one client served means a clean exit")
	assert.Contains(t, srv.out.String(), `received 6 bytes: "hello\n"`)
}

func TestPrintsTheClientsAddressAndPort(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	conn := dial(t, srv.addr)
	defer conn.Close()

	// The server sees the client's side of the connection: the same
	// address and port that the client's LocalAddr reports.
	assert.Equal(t, "client connected from "+conn.LocalAddr().String(), srv.out.next(t))
}

func TestReplyArrivesWhenClientSentMoreThanOneRead(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	conn := dial(t, srv.addr)

	// 3000 bytes is more than the server's one 1024-byte read. Closing a
	// socket with unread input would send a reset, which can destroy the
	// echo in flight; the server drains the rest first.
	msg := bytes.Repeat([]byte("x"), 3000)
	_, err := conn.Write(msg)
	require.NoError(t, err)
	require.NoError(t, conn.(*net.TCPConn).CloseWrite())
	reply, err := io.ReadAll(conn)
	require.NoError(t, err, "expected a clean end of stream, not a reset")
	assert.NotEmpty(t, reply)
	assert.Equal(t, msg[:len(reply)], reply, "the echo is a prefix of what was sent")
	require.NoError(t, srv.wait(t))
}

func TestSecondClientIsRefusedOnceTheFirstIsAccepted(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	first := dial(t, srv.addr)
	defer first.Close()
	srv.out.next(t) // "client connected from ...": the listener is closed now

	_, err := net.DialTimeout("tcp", srv.addr, wait)
	assert.True(t, isErrno(err, syscall.ECONNREFUSED), "want connection refused, got %v", err)
}

func TestClientThatLeavesWithoutSendingEndsCleanly(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	conn := dial(t, srv.addr)
	conn.Close()

	require.NoError(t, srv.wait(t))
	assert.Contains(t, srv.out.String(), "the client left without sending anything")
}

func TestClientThatResetsBeforeSendingIsReportedAndEndsCleanly(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	conn := dial(t, srv.addr)
	srv.out.next(t) // "client connected from ...": the server is reading now

	// Linger 0 makes Close send RST instead of FIN: an aborted client,
	// as when it crashes. That ends this one conversation, like a client
	// that leaves; the server says so in one line and exits 0.
	require.NoError(t, conn.(*net.TCPConn).SetLinger(0))
	require.NoError(t, conn.Close())

	require.NoError(t, srv.wait(t))
	assert.Equal(t, "the client reset the connection; nothing to echo", srv.out.next(t))
}

func TestSilentClientIsDroppedAfterTheIdleTimeout(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0", "-idle-timeout", "50ms")
	conn := dial(t, srv.addr)
	defer conn.Close()

	err := srv.wait(t)
	require.Error(t, err)
	assert.True(t, isTimeout(err), "want a timeout, got %v", err)
	assert.Contains(t, explain(err), "docs/errors.md#timeout")
}

func TestStopWhileWaitingForAClientExitsCleanly(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	srv.stop() // what Ctrl+C does
	require.NoError(t, srv.wait(t))
	assert.Contains(t, srv.out.String(), "stopped before any client connected")
}

func TestStopWhileTalkingToAClientExitsCleanly(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	conn := dial(t, srv.addr)
	defer conn.Close()
	srv.out.next(t) // connected; the server is now waiting in Read
	srv.stop()
	require.NoError(t, srv.wait(t))
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

func TestClientSendsEachLineAndPrintsTheReply(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	out, stderr, err := talk(t, srv.addr, strings.NewReader("hello\n"))
	require.NoError(t, err)
	assert.Equal(t, "hello\n", out)
	assert.Empty(t, stderr, "input ended first: nothing to say")
	require.NoError(t, srv.wait(t))
}

func TestClientSaysOnceThatTheServerClosedWhenInputIsLeft(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	// This server answers one message only. The client prints that
	// answer, then learns the server has gone when it sends the second
	// line: it says so once on stderr and ends without an error.
	out, stderr, err := talk(t, srv.addr, strings.NewReader("one\ntwo\nthree\n"))
	require.NoError(t, err)
	assert.Equal(t, "one\n", out)
	assert.Equal(t, "server closed the connection\n", stderr)
	require.NoError(t, srv.wait(t))
}

func TestClientPrintsTheEchoThenReportsTheReset(t *testing.T) {
	// The README's demonstration of step 2's pitfall: a server that
	// echoes one read of 1,024 bytes and closes with the rest of 3,000
	// unread. Its kernel resets the connection; Linux still hands the
	// client the echo first (Windows may throw it away).
	if runtime.GOOS != "linux" {
		t.Skip("checked on Linux, where the echo arrives before the reset")
	}
	ln := listener(t)
	served := make(chan struct{})
	go func() {
		defer close(served)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(wait))
		buf := make([]byte, 1024)
		n, _ := io.ReadFull(conn, buf)
		conn.Write(buf[:n])
	}()
	out, _, err := talk(t, ln.Addr().String(), strings.NewReader(strings.Repeat("x", 3000)))
	assert.Equal(t, strings.Repeat("x", 1024), out, "the echo, printed before the error")
	require.Error(t, err)
	assert.True(t, isReset(err), "want connection reset by peer, got %v", err)
	assert.Contains(t, explain(err), "read from "+ln.Addr().String()+": ")
	<-served
}

func TestClientStoppedWhileWaitingForAReplyExitsCleanlyAndSilently(t *testing.T) {
	// A server that accepts and never answers.
	ln := listener(t)
	go func() {
		if conn, err := ln.Accept(); err == nil {
			t.Cleanup(func() { conn.Close() })
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	stdin, feed := io.Pipe()
	t.Cleanup(func() { feed.Close() })
	stdout, stderr := newLines(), newLines()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-client", "-addr", ln.Addr().String()}, stdin, stdout, stderr)
	}()
	_, err := io.WriteString(feed, "hello\n") // taken: the client now waits for the reply
	require.NoError(t, err)
	cancel() // what Ctrl+C does

	require.NoError(t, waitFor(t, done), "Ctrl+C is not an error")
	assert.Empty(t, stdout.String())
	assert.Empty(t, stderr.String(), "Ctrl+C ends the client without a word")
}

func TestClientStoppedWhileWaitingForInputExitsAtOnce(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	// Standard input that never ends and never sends: a terminal where
	// nobody types. Ctrl+C must not wait for an Enter key.
	pipe, feed := io.Pipe()
	t.Cleanup(func() { feed.Close() })
	stdin := &firstRead{r: pipe, reading: make(chan struct{})}
	stderr := newLines()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-client", "-addr", srv.addr}, stdin, io.Discard, stderr)
	}()
	select {
	case <-stdin.reading: // connected, and now waiting for input
	case <-time.After(wait):
		t.Fatal("the client never read its input")
	}
	cancel()

	require.NoError(t, waitFor(t, done))
	assert.Empty(t, stderr.String())
}

func TestClientReportsConnectionRefused(t *testing.T) {
	addr := closedPort(t)
	_, _, err := talk(t, addr, strings.NewReader("hi\n"))
	require.Error(t, err)
	assert.True(t, isErrno(err, syscall.ECONNREFUSED), "want ECONNREFUSED, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#econnrefused)")
}

func TestAddressWithoutAHostGetsAHint(t *testing.T) {
	// "-addr 9004" is a port alone: Go wants host:port. The error says
	// how to write it, for the server and for the client alike.
	err := run(context.Background(), []string{"-addr", "9004"}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Equal(t, "listen on 9004: address 9004: missing port in address (write host:port, e.g. 127.0.0.1:9004 or :9004)", explain(err))

	err = run(context.Background(), []string{"-client", "-addr", "9004"}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Equal(t, "connect to 9004: address 9004: missing port in address (write host:port, e.g. 127.0.0.1:9004 or :9004)", explain(err))
}

func TestBadFlagIsAUsageError(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-no-such-flag"}, nil, io.Discard, &stderr)
	assert.ErrorIs(t, err, errUsage)
	assert.Contains(t, stderr.String(), "-addr")
}

func TestWorksWithNetcat(t *testing.T) {
	nc := lookTool(t, "nc")
	srv := startServer(t, "-addr", "127.0.0.1:0")
	host, port, _ := net.SplitHostPort(srv.addr)

	// nc sends its standard input and prints what comes back; the server
	// closes after the echo, which ends nc.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, nc, host, port)
	cmd.Stdin = strings.NewReader("hi from nc\n")
	got, err := cmd.Output()
	require.NoError(t, err)
	assert.Equal(t, "hi from nc\n", string(got))
	require.NoError(t, srv.wait(t))
}

func TestWorksWithTelnet(t *testing.T) {
	telnet := lookTool(t, "telnet")
	srv := startServer(t, "-addr", "127.0.0.1:0")
	host, port, _ := net.SplitHostPort(srv.addr)

	// telnet quits as soon as its input ends, so the input stays open
	// until the server reports that the echo went out.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	stdin, feed := io.Pipe()
	cmd := exec.CommandContext(ctx, telnet, host, port)
	cmd.Stdin = stdin
	var got bytes.Buffer
	cmd.Stdout = &got
	require.NoError(t, cmd.Start())
	_, err := io.WriteString(feed, "hi from telnet\n")
	require.NoError(t, err)
	require.NoError(t, srv.wait(t))
	feed.Close()
	cmd.Wait() // telnet exits 1 when the server closes; its output is what counts
	assert.Contains(t, got.String(), "hi from telnet")
	// telnet turns the newline into the network's "\r\n" (with a NUL
	// after the "\r" in this mode), so only the text itself is compared.
	assert.Contains(t, srv.out.String(), `hi from telnet\r`)
}

// The README shows what a learner sees; these tests produce the same
// sessions and compare them line by line, ports aside.

func TestReadmeServerTranscript(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	conn := dial(t, srv.addr)
	_, err := conn.Write([]byte("hello\n"))
	require.NoError(t, err)
	_, err = io.ReadAll(conn)
	require.NoError(t, err)
	conn.Close()
	require.NoError(t, srv.wait(t))
	assertTranscript(t, "server", srv.out.String())
}

func TestReadmeClientTranscript(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	out, _, err := talk(t, srv.addr, strings.NewReader("hello\n"))
	require.NoError(t, err)
	require.NoError(t, srv.wait(t))
	assertTranscript(t, "client", out)
}

func TestReadmeAddressInUseTranscript(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	defer ln.Close()
	err = run(context.Background(), []string{"-addr", ln.Addr().String()}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assertTranscript(t, "address-in-use", "error: "+inLinuxWords(t, err, explain(err))+"\n")
}

// The recorder must never hold up the program it records, however much
// it prints before a test reads it.
func TestLineRecorderNeverBlocksAChattyProgram(t *testing.T) {
	const n = 5000
	l := newLines()
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		for i := 0; i < n; i++ {
			fmt.Fprintf(l, "line %d\n", i)
		}
	}()
	select {
	case <-printed:
	case <-time.After(wait):
		t.Fatalf("printing %d lines with nobody reading blocked", n)
	}
	for i := 0; i < n; i++ {
		require.Equal(t, fmt.Sprintf("line %d", i), l.next(t), "no line is lost")
	}
}
