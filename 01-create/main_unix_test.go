//go:build unix

package main

import (
	"context"
	"net"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestControlSeesTheSocketBeforeItIsBound(t *testing.T) {
	var portInControl = -1
	lc := net.ListenConfig{
		Control: func(network, address string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				// getsockname on a socket that is not bound yet reports
				// port 0: nothing has been chosen.
				sa, err := unix.Getsockname(int(fd))
				if in4, ok := sa.(*unix.SockaddrInet4); err == nil && ok {
					portInControl = in4.Port
				}
			})
		},
	}
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()

	assert.Equal(t, 0, portInControl, "Control should run before bind")
	assert.NotZero(t, ln.Addr().(*net.TCPAddr).Port, "Listen binds after Control returns")
}

func TestGoSocketsAreNonBlockingAndCloseOnExecUnlikeABareSocket(t *testing.T) {
	// socket(2) without SOCK_NONBLOCK gives a blocking socket: a read
	// would stop the whole thread until data came. Without
	// SOCK_CLOEXEC, a program this one starts would inherit it.
	bare := mustSocket(t, afInet, sockStream)
	status, err := unix.FcntlInt(uintptr(bare), unix.F_GETFL, 0)
	require.NoError(t, err)
	assert.Zero(t, status&unix.O_NONBLOCK, "a bare socket blocks")
	fdFlags, err := unix.FcntlInt(uintptr(bare), unix.F_GETFD, 0)
	require.NoError(t, err)
	assert.Zero(t, fdFlags&unix.FD_CLOEXEC, "a bare socket is inherited by child processes")

	// Go makes its sockets non-blocking and parks the goroutine in the
	// runtime's poller instead, so one thread serves many connections;
	// and it keeps them from leaking into programs it starts.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	raw, err := ln.(*net.TCPListener).SyscallConn()
	require.NoError(t, err)
	var goStatus, goFDFlags int
	var statusErr, fdErr error
	require.NoError(t, raw.Control(func(fd uintptr) {
		goStatus, statusErr = unix.FcntlInt(fd, unix.F_GETFL, 0)
		goFDFlags, fdErr = unix.FcntlInt(fd, unix.F_GETFD, 0)
	}))
	require.NoError(t, statusErr)
	require.NoError(t, fdErr)
	assert.NotZero(t, goStatus&unix.O_NONBLOCK, "a socket from net.Listen is non-blocking")
	assert.NotZero(t, goFDFlags&unix.FD_CLOEXEC, "a socket from net.Listen is closed on exec")
}
