//go:build unix

package docs

import (
	"bytes"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func errConnRefused() error { return syscall.ECONNREFUSED }

func TestOneSendSystemCallMaySendFewerBytes(t *testing.T) {
	client, _ := pair(t)
	// Nobody reads the other end, and the send buffer is small.
	require.NoError(t, client.(*net.TCPConn).SetWriteBuffer(16<<10))
	big := bytes.Repeat([]byte("x"), 4<<20)

	// One write(2) on the socket, as Python's send does: the kernel
	// takes what fits and says how much.
	rc, err := client.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	var n int
	var werr error
	require.NoError(t, rc.Write(func(fd uintptr) bool {
		n, werr = unix.Write(int(fd), big)
		return true
	}))

	require.NoError(t, werr)
	assert.Greater(t, n, 0)
	assert.Less(t, n, len(big), "one send should take only part of 4 MiB")
}

func TestGoSocketsAreNonBlockingUnderTheHood(t *testing.T) {
	client, _ := pair(t)
	rc, err := client.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)

	// The descriptor has O_NONBLOCK: the runtime poller, not the
	// kernel, parks a goroutine that waits.
	var flags int
	var ferr error
	require.NoError(t, rc.Control(func(fd uintptr) {
		flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0)
	}))
	require.NoError(t, ferr)
	assert.NotZero(t, flags&unix.O_NONBLOCK)
}

func TestGoSetsSOREUSEADDROnListeners(t *testing.T) {
	ln := listen(t)
	rc, err := ln.(*net.TCPListener).SyscallConn()
	require.NoError(t, err)

	var v int
	var gerr error
	require.NoError(t, rc.Control(func(fd uintptr) {
		v, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR)
	}))
	require.NoError(t, gerr)
	assert.NotZero(t, v, "net.Listen should set SO_REUSEADDR")
}

func TestSocketpairGivesTwoConnectedEnds(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	require.NoError(t, err)
	a, err := fileConn(fds[0], "a")
	require.NoError(t, err)
	defer a.Close()
	b, err := fileConn(fds[1], "b")
	require.NoError(t, err)
	defer b.Close()

	_, err = a.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = b.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(buf))
}

// fileConn turns a socket descriptor into a net.Conn. FileConn takes a
// copy of the descriptor, so the original is closed here.
func fileConn(fd int, name string) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return net.FileConn(f)
}
