package main

// These tests run the step's Server in the test process, on a listener
// of their own (127.0.0.1, port 0), and call the frame functions
// directly on in-memory streams.

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os/exec"
	"runtime"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

const wait = 5 * time.Second

// The fix for step 3's pitfall: the same two commands, and each reply
// comes off the stream whole, with nothing of the other.
func TestRepliesStayApartInOneStream(t *testing.T) {
	skipWithoutEcho(t)
	addr := serve(t, &Server{Handler: cmdHandler{}})
	conn := dial(t, addr)
	_, err := io.WriteString(conn, "echo 1\necho 22\n")
	require.NoError(t, err)
	require.NoError(t, conn.(*net.TCPConn).CloseWrite())

	replies := bufio.NewReader(conn)
	for _, want := range []string{"1\n", "22\n"} {
		got, err := readFrame(replies)
		require.NoError(t, err)
		assert.Equal(t, want, string(got))
	}
	_, err = readFrame(replies)
	assert.ErrorIs(t, err, io.EOF, "the stream ends between frames")
}

func TestFramesSurviveOneByteReads(t *testing.T) {
	var stream bytes.Buffer
	for _, reply := range []string{"first\n", "", "third\n"} {
		require.NoError(t, writeFrame(&stream, []byte(reply)))
	}
	r := iotest.OneByteReader(&stream) // the worst split TCP could deliver
	for _, want := range []string{"first\n", "", "third\n"} {
		got, err := readFrame(r)
		require.NoError(t, err)
		assert.Equal(t, want, string(got))
	}
}

func TestReadFrameRefusesAHugeLengthBeforeAllocating(t *testing.T) {
	allocs := testing.AllocsPerRun(10, func() {
		_, err := readFrame(bytes.NewReader([]byte("\xff\xff\xff\xff")))
		if !errors.Is(err, errFrameTooLarge) {
			t.Errorf("want errFrameTooLarge, got %v", err)
		}
	})
	assert.Less(t, allocs, 10.0, "a few small allocations for the error; nothing near 4 GB")
}

// The pitfall of this step, which step 5 fixes: the Server cannot stop.
// Closing its listener ends Serve, but the conversations go on, tracked
// by nobody; a program that then exits cuts them off mid-reply, without
// a word to the clients.
func TestClosingTheListenerLeavesConversationsRunning(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- (&Server{Handler: HandlerFunc(upper)}).Serve(ln) }()
	conn := dial(t, ln.Addr().String())
	replies := bufio.NewReader(conn)
	assert.Equal(t, "BEFORE\n", ask(t, conn, replies, "before"))

	require.NoError(t, ln.Close())
	select {
	case <-served:
	case <-time.After(wait):
		t.Fatal("Serve did not return after its listener closed")
	}
	// Serve has returned, and the client is still being served: nothing
	// told its handler, and nothing can wait for it to finish.
	assert.Equal(t, "AFTER\n", ask(t, conn, replies, "after"))
}

// ---- helpers ----

// serve runs srv on a fresh loopback listener until the test ends.
func serve(t *testing.T, srv *Server) string {
	t.Helper()
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go srv.Serve(ln)
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// ask sends one line and returns the reply line.
func ask(t *testing.T, conn net.Conn, replies *bufio.Reader, line string) string {
	t.Helper()
	_, err := io.WriteString(conn, line+"\n")
	require.NoError(t, err)
	reply, err := replies.ReadString('\n')
	require.NoError(t, err)
	return reply
}

// skipWithoutEcho skips where echo is not a program: on Windows it is
// built into cmd.exe.
func skipWithoutEcho(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("echo is a cmd.exe built-in on Windows, not a program")
	}
	if _, err := exec.LookPath("echo"); err != nil {
		t.Skip("no echo program on this machine")
	}
}
