package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Descriptors and their limit belong to the whole process: one that an
// earlier test's connection frees late would let Accept succeed. So the
// test runs alone, in a process of its own.
func TestAcceptRecoversFromTooManyOpenFiles(t *testing.T) {
	if runAlone(t) {
		return
	}
	forEachPoller(t, func(t *testing.T, poller string) {
		srv := startServer(t, "-poller", poller)
		host, port, err := net.SplitHostPort(srv.addr)
		require.NoError(t, err)
		sa := &unix.SockaddrInet4{Port: atoi(t, port)}
		copy(sa.Addr[:], net.ParseIP(host).To4())

		// The client's socket is made first: it needs a descriptor too.
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)

		var old syscall.Rlimit
		require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old))
		restore := func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) }
		t.Cleanup(restore)
		// The lowest free descriptor number becomes the limit: every
		// lower one is in use, so the next accept has none to take.
		probe, err := unix.Dup(0)
		require.NoError(t, err)
		unix.Close(probe)
		low := syscall.Rlimit{Cur: uint64(probe), Max: old.Max}
		require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low))

		// The kernel completes the handshake; the server's accept fails.
		require.NoError(t, unix.Connect(fd, sa))
		srv.out.waitFor(t, "too many open files; retrying with a growing pause")
		// Let the shortage last through several retries (5, 10, 20, 40
		// and 80 ms): no greeting may come meanwhile. The poll's timeout
		// is the length of the shortage, not a way to synchronise.
		ready, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 200)
		require.NoError(t, err)
		require.Zero(t, ready, "greeted while the server had no descriptor to accept with")
		restore()

		// With descriptors back, the waiting client is greeted ...
		// FileConn makes its own copy of the descriptor; the *os.File
		// owns the original and must close it (not unix.Close, or its
		// finalizer would later close whatever reuses the number).
		f := os.NewFile(uintptr(fd), "client")
		conn, err := net.FileConn(f)
		f.Close()
		require.NoError(t, err)
		defer conn.Close()
		require.NoError(t, conn.SetDeadline(time.Now().Add(wait)))
		line, err := bufio.NewReader(conn).ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, greetingLine, line)
		// ... and so is a fresh one.
		connect(t, srv.addr).echo(t, "recovered?\n")
		// However many retries failed, the log says so once.
		assert.Equal(t, 1, strings.Count(srv.out.String(), "too many open files"), srv.out.String())
	})
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	for _, r := range s {
		require.True(t, r >= '0' && r <= '9', "not a port: %q", s)
		n = n*10 + int(r-'0')
	}
	return n
}

// runAlone runs the calling test again in a new process of this test
// binary, with no other test in it, and reports whether it did so: the
// caller then returns. Inside that new process it returns false, and the
// test itself runs.
func runAlone(t *testing.T) bool {
	t.Helper()
	if os.Getenv("SOCKETSTEPS_ALONE") == t.Name() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v")
	cmd.Env = append(os.Environ(), "SOCKETSTEPS_ALONE="+t.Name())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s in a process of its own:\n%s", t.Name(), out)
	require.Contains(t, string(out), "--- PASS: "+t.Name(), "the test did not run in the new process:\n%s", out)
	return true
}
