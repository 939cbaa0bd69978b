package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// These tests open sockets with system calls (golang.org/x/sys/unix),
// step by step as Python's socket module does, to show what net.Listen
// does for us and what happens without it. They need Linux: its
// /proc files, its backlog rules and its error numbers.

func TestGoListenersSetSOREUSEADDR(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()

	// SyscallConn reaches the socket under the listener; getsockopt
	// reads the option Go set before binding.
	raw, err := ln.(*net.TCPListener).SyscallConn()
	require.NoError(t, err)
	var value int
	var optErr error
	require.NoError(t, raw.Control(func(fd uintptr) {
		value, optErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR)
	}))
	require.NoError(t, optErr)
	assert.Equal(t, 1, value, "net.Listen turns SO_REUSEADDR on")
}

func TestWithoutSOREUSEADDRARestartFailsWhileTIMEWAITHoldsThePort(t *testing.T) {
	addr := portInTimeWait(t)
	port := mustPort(t, addr)
	assert.True(t, inTimeWait(t, port), "the closed connection should be in TIME_WAIT on port %d", port)

	// A socket made by hand, without SO_REUSEADDR, as in the articles
	// before they add the setsockopt line: bind is refused.
	_, err := rawListen(t, port, false, 5)
	assert.ErrorIs(t, err, syscall.EADDRINUSE)

	// The same socket with SO_REUSEADDR binds fine; so does net.Listen,
	// which sets the option itself.
	_, err = rawListen(t, port, true, 5)
	assert.NoError(t, err)
}

func TestGoAsksForTheSystemMaximumBacklog(t *testing.T) {
	ss, err := exec.LookPath("ss")
	if err != nil {
		t.Skip("ss is not installed (on Debian: apt-get install iproute2)")
	}
	somaxconn, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	require.NoError(t, err)

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()

	// For a listening socket, ss shows the backlog in the Send-Q column.
	port := mustPort(t, ln.Addr().String())
	out, err := exec.Command(ss, "-ltnH", fmt.Sprintf("sport = :%d", port)).Output()
	require.NoError(t, err)
	fields := strings.Fields(string(out))
	require.GreaterOrEqual(t, len(fields), 3, "ss printed %q", out)
	assert.Equal(t, strings.TrimSpace(string(somaxconn)), fields[2],
		"the backlog should be net.core.somaxconn")
}

func TestAFullBacklogMakesTheNextClientWaitNotRefused(t *testing.T) {
	// A listener with a backlog of 1, and nobody accepting.
	const backlog = 1
	fd, err := rawListen(t, 0, false, backlog)
	require.NoError(t, err)
	sa, err := unix.Getsockname(fd)
	require.NoError(t, err)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*unix.SockaddrInet4).Port))

	// Linux queues up to backlog+1 connections. The next client is not
	// refused: its connection request is dropped, and its system would
	// try again later. With a short timeout that looks like a timeout.
	queued := 0
	for ; queued < backlog+3; queued++ {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			var netErr net.Error
			require.ErrorAs(t, err, &netErr)
			assert.True(t, netErr.Timeout(), "want a timeout, not a refusal: %v", err)
			assert.NotErrorIs(t, err, syscall.ECONNREFUSED)
			break
		}
		t.Cleanup(func() { conn.Close() })
	}
	assert.Equal(t, backlog+1, queued, "Linux queues one more client than the backlog asks for")
}

func TestClientsStillInTheBacklogAreResetWhenTheServerStops(t *testing.T) {
	srv := startServer(t, "-addr", "127.0.0.1:0")
	conn := dial(t, srv.addr)
	srv.stop()
	require.NoError(t, srv.wait(t))

	// The connection was never accepted; closing the listener resets it.
	_, err := conn.Read(make([]byte, 1))
	assert.ErrorIs(t, err, syscall.ECONNRESET)
}

// rawListen creates, binds and listens on a TCP socket at 127.0.0.1:port
// with system calls, setting SO_REUSEADDR only if reuse is true. These
// are the steps net.Listen takes.
func rawListen(t *testing.T, port int, reuse bool, backlog int) (int, error) {
	t.Helper()
	// Step 1: socket.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	// Optional step: socket options, before bind.
	if reuse {
		require.NoError(t, unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1))
	}
	// Step 2: bind.
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != nil {
		return -1, err
	}
	// Step 3: listen.
	if err := unix.Listen(fd, backlog); err != nil {
		return -1, err
	}
	return fd, nil
}

// inTimeWait reports whether /proc/net/tcp lists a connection in state
// TIME_WAIT (06) whose local port is port.
func inTimeWait(t *testing.T, port int) bool {
	t.Helper()
	table, err := os.Open("/proc/net/tcp")
	require.NoError(t, err)
	defer table.Close()
	// The table can be long on a busy machine: read it in big chunks,
	// and look at the state only on lines that mention the port.
	local := fmt.Sprintf(":%04X ", port)
	lines := bufio.NewScanner(bufio.NewReaderSize(table, 1<<20))
	for lines.Scan() {
		line := lines.Text()
		if !strings.Contains(line, local) {
			continue
		}
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1]+" ", local) && f[3] == "06" {
			return true
		}
	}
	require.NoError(t, lines.Err())
	return false
}

func mustPort(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	port, err := strconv.Atoi(p)
	require.NoError(t, err)
	return port
}
