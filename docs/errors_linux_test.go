package docs

// The entries of errors.md that need Linux's system calls to happen on
// demand: limits, capabilities, a listener with a full backlog, TIME_WAIT.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestCatalogueEACCES(t *testing.T) {
	// Ports below net.ipv4.ip_unprivileged_port_start (1024 unless an
	// administrator changed it) need CAP_NET_BIND_SERVICE.
	first := unprivilegedPortStart(t)
	if first <= 80 {
		t.Skipf("net.ipv4.ip_unprivileged_port_start is %d here: anyone may bind port 80", first)
	}

	// Root has the capability, so a root test gives it up first, on one
	// thread only (see withoutCapability).
	var err error
	withoutCapability(t, unix.CAP_NET_BIND_SERVICE, func() {
		var ln net.Listener
		ln, err = net.Listen("tcp", "127.0.0.1:80")
		if err == nil {
			ln.Close()
		}
	})

	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.EACCES), "want EACCES, got %v", err)
	assert.ErrorIs(t, err, os.ErrPermission, "on Unix EACCES also matches os.ErrPermission")
	checkMessage(t, "eacces", err)
}

func TestCatalogueEPERM(t *testing.T) {
	// A raw socket (ping, traceroute, packet capture) needs CAP_NET_RAW.
	var err error
	withoutCapability(t, unix.CAP_NET_RAW, func() {
		var c net.PacketConn
		c, err = net.ListenPacket("ip4:icmp", "127.0.0.1")
		if err == nil {
			c.Close()
		}
	})

	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.EPERM), "want EPERM, got %v", err)
	checkMessage(t, "eperm", err)
}

func TestCatalogueEAFNOSUPPORT(t *testing.T) {
	// Asking for a family the kernel does not have. Family 255 is
	// beyond every family Linux knows; a kernel booted without IPv6
	// answers AF_INET6 the same way.
	_, err := unix.Socket(255, unix.SOCK_STREAM, 0)
	err = os.NewSyscallError("socket", err)

	assert.True(t, errors.Is(err, syscall.EAFNOSUPPORT), "want EAFNOSUPPORT, got %v", err)
	checkMessage(t, "eafnosupport", err)
}

func TestCatalogueEMFILE(t *testing.T) {
	// Not parallel: the limit is the whole process's, and no other test
	// runs while a sequential test does.
	ln := listen(t)
	client := dial(t, ln.Addr().String()) // waits in the backlog

	// Lower the soft limit to just above the highest descriptor in use,
	// then fill any lower gaps, so the next descriptor cannot exist.
	var saved unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &saved))
	lowered := saved
	lowered.Cur = uint64(highestFD(t) + 1)
	require.NoError(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &lowered))
	var fillers []*os.File
	release := func() {
		for _, f := range fillers {
			f.Close()
		}
		fillers = nil
		require.NoError(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &saved))
	}
	t.Cleanup(release)
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			require.ErrorIs(t, err, syscall.EMFILE)
			break
		}
		fillers = append(fillers, f)
	}

	// The kernel has the connection, but the process cannot get a
	// descriptor for it.
	require.NoError(t, ln.(*net.TCPListener).SetDeadline(time.Now().Add(wait)))
	conn, err := ln.Accept()
	if err == nil {
		conn.Close()
	}
	release()

	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.EMFILE), "want EMFILE, got %v", err)
	checkMessage(t, "emfile", err)
	client.Close()
}

func TestGoRaisesTheOpenFileLimit(t *testing.T) {
	// Since Go 1.19 a program that imports os starts with its soft
	// limit raised to the hard limit (and gives children the original).
	var lim unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &lim))
	assert.Equal(t, lim.Max, lim.Cur)
}

func TestCatalogueDialTimeout(t *testing.T) {
	t.Parallel()
	addr := fullListener(t)

	// The listener's queue is full, so the kernel drops our SYN: no
	// answer at all, as from a host that is down or filtered.
	var err error
	for i := 0; i < 5 && err == nil; i++ {
		var c net.Conn
		c, err = net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close() // slipped in while the queue filled; try again
		}
	}

	require.Error(t, err)
	var netErr net.Error
	require.ErrorAs(t, err, &netErr)
	assert.True(t, netErr.Timeout())
	// Which sentinel it matches depends on which of Go's two timers
	// noticed first: the connect's deadline or the dial's context.
	assert.True(t, errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded), "got %v", err)
	checkMessage(t, "timeout-dial", err)
}

func TestCatalogueETIMEDOUT(t *testing.T) {
	t.Parallel()
	addr := fullListener(t)

	// Without help the kernel retries a SYN for about two minutes
	// (net.ipv4.tcp_syn_retries) before connect fails with ETIMEDOUT.
	// TCP_USER_TIMEOUT shortens that to the first retry, after 1s.
	d := net.Dialer{Timeout: wait, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 100)
		})
		return errors.Join(err, serr)
	}}
	var err error
	for i := 0; i < 5 && err == nil; i++ {
		var c net.Conn
		c, err = d.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
	}

	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.ETIMEDOUT)
	var netErr net.Error
	require.ErrorAs(t, err, &netErr)
	assert.True(t, netErr.Timeout(), "ETIMEDOUT counts as a timeout too")
	checkMessage(t, "etimedout", err)
}

func TestCatalogueTIMEWAIT(t *testing.T) {
	// The kernel keeps at most net.ipv4.tcp_max_tw_buckets TIME_WAIT
	// records; past that it drops new ones at once (load tests on the
	// same machine can fill the table).
	if tw, max := timeWaitCount(t); tw+100 >= max {
		t.Skipf("the kernel's TIME_WAIT table is full (%d of %d records): it would keep no record for this test", tw, max)
	}
	client, server := pair(t)
	port := server.LocalAddr().(*net.TCPAddr).Port

	// The server closes first (the active close), so its side of the
	// connection stays in TIME_WAIT once the client has closed too.
	require.NoError(t, server.Close())
	_, err := client.Read(make([]byte, 1))
	require.Error(t, err) // EOF: the server's FIN arrived
	require.NoError(t, client.Close())
	waitForState(t, port, "06") // 06 is TIME_WAIT in /proc/net/tcp

	// A plain socket without SO_REUSEADDR cannot bind the port now.
	err = bindWithoutReuseAddr(port)
	assert.ErrorIs(t, err, syscall.EADDRINUSE)
	checkMessage(t, "time-wait", err)

	// net.Listen sets SO_REUSEADDR on Unix, so a restarted Go server
	// gets its port back at once.
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	require.NoError(t, err, "net.Listen should succeed despite TIME_WAIT")
	ln.Close()
}

// ---- helpers ----

func unprivilegedPortStart(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		t.Skipf("cannot read ip_unprivileged_port_start: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return n
}

// withoutCapability runs f on an OS thread that has given up capability
// c. Linux keeps capabilities per thread, so the rest of the process
// keeps its own. The thread is never unlocked, so the Go runtime ends it
// when f's goroutine returns instead of reusing it.
func withoutCapability(t *testing.T, c int, f func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			done <- err
			return
		}
		data[c/32].Effective &^= 1 << (c % 32)
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			done <- err
			return
		}
		f()
		done <- nil
	}()
	select {
	case err := <-done:
		require.NoError(t, err, "could not drop the capability")
	case <-time.After(wait):
		t.Fatal("f did not return")
	}
}

// highestFD returns the highest file descriptor the process has open.
func highestFD(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	high := 0
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > high {
			high = n
		}
	}
	return high
}

// fullListener returns the address of a listener with a backlog of 0
// (room for one connection) that already holds a connection nobody
// accepts. net.Listen cannot do this: it always asks for the system's
// maximum backlog.
func fullListener(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	require.NoError(t, unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, unix.Listen(fd, 0))
	sa, err := unix.Getsockname(fd)
	require.NoError(t, err)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	dial(t, addr) // takes the one place in the queue
	return addr
}

// bindWithoutReuseAddr binds a fresh socket to 127.0.0.1:port the way C
// (or Python without setsockopt) does: no SO_REUSEADDR.
func bindWithoutReuseAddr(port int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	return os.NewSyscallError("bind", unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}))
}

// timeWaitCount returns how many TIME_WAIT records the kernel holds
// (the "tw" figure of /proc/net/sockstat) and how many it allows.
func timeWaitCount(t *testing.T) (tw, max int) {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_max_tw_buckets")
	require.NoError(t, err)
	max, err = strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	b, err = os.ReadFile("/proc/net/sockstat")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "TCP:" {
			continue
		}
		for i := 1; i+1 < len(fields); i += 2 {
			if fields[i] == "tw" {
				tw, err = strconv.Atoi(fields[i+1])
				require.NoError(t, err)
			}
		}
	}
	return tw, max
}

// waitForState waits until a TCP socket with local port port is in
// state (hex, as /proc/net/tcp shows it). The state change follows the
// last ACK within microseconds on loopback; the loop only covers that.
func waitForState(t *testing.T, port int, state string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if socketState(t, port) == state {
			return
		}
		runtime.Gosched()
	}
	t.Fatalf("port %d never reached state %s", port, state)
}

func socketState(t *testing.T, port int) string {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	require.NoError(t, err)
	defer f.Close()
	local := fmt.Sprintf("0100007F:%04X", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 3 && fields[1] == local {
			return fields[3]
		}
	}
	return ""
}
