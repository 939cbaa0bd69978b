package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
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
	_, port, err := net.SplitHostPort(srv.addr)
	require.NoError(t, err)
	assert.NotEqual(t, "0", port)
	conn := dial(t, srv.addr)
	conn.Close()
}

func TestClientsConnectWhileNobodyCallsAccept(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")

	// The program never calls Accept, yet every connect succeeds: the
	// kernel completes the handshake and queues the connection.
	const clients = 16
	conns := make([]net.Conn, clients)
	for i := range conns {
		conns[i] = dial(t, srv.addr)
	}
	// A client may even send: the bytes wait in the kernel's buffer.
	for _, c := range conns {
		_, err := c.Write([]byte("anyone there?\n"))
		require.NoError(t, err)
	}
	// But nothing comes back, because nobody reads. A short deadline
	// stands for "a while": the test proves silence, not a delay.
	require.NoError(t, conns[0].SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	_, err := conns[0].Read(make([]byte, 1))
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "nobody accepted, so nobody can answer")
}

func TestSecondCopyOnTheSamePortFailsWithAddressInUse(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")

	// The second copy is refused at bind, even though Go sets
	// SO_REUSEADDR on Unix: that option does not let two sockets listen
	// on one port.
	err := run(context.Background(), []string{"-addr", srv.addr}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	msg := explain(err)
	assert.Contains(t, msg, "another program already listens there; stop it, or choose another -addr")
	assert.Contains(t, msg, "(see docs/errors.md#eaddrinuse)")

	// The first copy is not disturbed: it still takes clients.
	dial(t, srv.addr).Close()
}

func TestAddressInUseIsDetectedWithErrorsIsOnEveryPlatform(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	defer ln.Close()

	_, err = net.Listen("tcp", ln.Addr().String())
	require.Error(t, err)
	// The error is a chain: *net.OpError, then *os.SyscallError("bind"),
	// then the system's number. errors.Is walks the chain; comparing
	// err.Error() with a string would break with every wording.
	// (On Windows the number is Winsock's WSAEADDRINUSE, 10048, which
	// isErrno also looks for: see errors_windows.go.)
	assert.True(t, isErrno(err, syscall.EADDRINUSE), "want EADDRINUSE, got %v", err)
	var sysErr *os.SyscallError
	require.ErrorAs(t, err, &sysErr)
	assert.Equal(t, "bind", sysErr.Syscall, "binding is the step that fails")
	assert.Contains(t, explain(err), "(see docs/errors.md#eaddrinuse)")
}

func TestRestartRightAfterAClosedConnectionBindsFine(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Go does not set SO_REUSEADDR on Windows, where the option would let another program take over the port; Windows' own rules for TIME_WAIT are not shown here")
	}
	// A server that closes a connection first keeps it in TIME_WAIT for
	// a minute or more, on the server's own port.
	addr := portInTimeWait(t)

	// The restarted server binds the same port at once, because Go's
	// listener sets SO_REUSEADDR.
	err := run(canceled(), []string{"-addr", addr}, nil, io.Discard, io.Discard)
	assert.NoError(t, err, "a restart should not be blocked by TIME_WAIT")
}

func TestAddressOfAnotherMachineFailsWithAddressNotAvailable(t *testing.T) {
	// 192.0.2.1 is reserved for documentation (RFC 5737): it is never
	// one of this machine's addresses, so it cannot be bound.
	err := run(context.Background(), []string{"-addr", "192.0.2.1:0"}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.True(t, isErrno(err, syscall.EADDRNOTAVAIL), "want EADDRNOTAVAIL, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#eaddrnotavail)")
}

func TestPermissionDeniedIsExplained(t *testing.T) {
	// Whether binding port 80 is allowed depends on the user and the
	// system, so this checks only how the error is explained.
	err := &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)}
	assert.Contains(t, explain(err), "(see docs/errors.md#eacces)")
}

func TestInterruptStopsCleanly(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	srv.out.next(t) // "nobody calls Accept here: ..."
	srv.stop()      // what Ctrl+C does
	require.NoError(t, srv.wait(t), "stopping is not an error: exit status 0")

	// The port is free again: a new listener can take it.
	ln, err := net.Listen("tcp", srv.addr)
	require.NoError(t, err)
	ln.Close()
}

func TestAddressWithoutAHostGetsAHint(t *testing.T) {
	// "-addr 9003" is a port alone: Go wants host:port. The error says
	// how to write it.
	err := run(context.Background(), []string{"-addr", "9003"}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Equal(t, "listen on 9003: address 9003: missing port in address (write host:port, e.g. 127.0.0.1:9003 or :9003)", explain(err))
}

func TestBadFlagIsAUsageError(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-no-such-flag"}, nil, io.Discard, &stderr)
	assert.ErrorIs(t, err, errUsage)
	assert.Contains(t, stderr.String(), "-addr")
}

func TestTelnetSaysConnectedThoughNobodyAccepts(t *testing.T) {
	telnet, err := exec.LookPath("telnet")
	if err != nil {
		t.Skip("telnet is not installed (on Debian: apt-get install telnet); .ci/run installs it")
	}
	srv := startServer(t, "-addr", "127.0.0.1:0")
	host, port, _ := net.SplitHostPort(srv.addr)

	// telnet reports the finished handshake; the server never accepted.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	stdin, feed := io.Pipe()
	cmd := exec.CommandContext(ctx, telnet, host, port)
	cmd.Stdin = stdin
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer cmd.Wait()
	defer feed.Close() // telnet quits when its input ends

	output := bufio.NewScanner(stdout)
	for output.Scan() {
		if output.Text() == "Connected to "+host+"." {
			return
		}
	}
	t.Fatalf("telnet did not say %q", "Connected to "+host+".")
}

// The README shows what a learner sees; these tests produce the same
// sessions and compare them line by line, ports aside.

func TestReadmeServerTranscript(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	srv.out.next(t)
	dial(t, srv.addr).Close()
	srv.stop()
	require.NoError(t, srv.wait(t))
	assertTranscript(t, "server", srv.out.String())
}

func TestReadmeAddressInUseTranscript(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	err := run(context.Background(), []string{"-addr", srv.addr}, nil, io.Discard, io.Discard)
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
