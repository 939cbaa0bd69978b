//go:build exercise || solution

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// wait bounds every blocking step of a test.
const wait = 5 * time.Second

func TestDialWithRcvBufSetsTheBufferInControl(t *testing.T) {
	ln := listener(t)
	var log bytes.Buffer
	conn := dialRcvBuf(t, &log, ln.Addr().String(), 8192)

	// Control receives the network and the address being dialled.
	assert.Equal(t, fmt.Sprintf("Control(%q, %q) before connect: SO_RCVBUF = 8192\n", "tcp4", ln.Addr().String()), log.String())
	got, err := readOption(conn.(syscall.Conn), solSocket, soRcvBuf)
	require.NoError(t, err)
	if runtime.GOOS == "linux" {
		// Linux doubles the value to make room for its bookkeeping.
		assert.Equal(t, 16384, got)
	} else {
		assert.GreaterOrEqual(t, got, 8192)
	}
}

func TestAPlainDialHasAnotherBuffer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skipf("the default buffer size is known on Linux only, not on %s", runtime.GOOS)
	}
	// Without Control the kernel's default applies (net.ipv4.tcp_rmem),
	// so the value above really came from dialWithRcvBuf.
	conn := dialPlain(t, listener(t))
	got, err := readOption(conn.(syscall.Conn), solSocket, soRcvBuf)
	require.NoError(t, err)
	assert.NotEqual(t, 16384, got)
}

func TestControlRunsBeforeConnectEvenWhenTheConnectFails(t *testing.T) {
	// A port that was just free: nothing listens there, so connect is
	// refused. Control had already run by then.
	ln := listener(t)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	var log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := dialWithRcvBuf(ctx, &log, addr, 8192)
	if conn != nil {
		conn.Close()
	}
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.Errno(10061)),
		"want connection refused, got %v", err)
	assert.Contains(t, err.Error(), addr, "the error names the address")
	assert.Contains(t, log.String(), "before connect: SO_RCVBUF = 8192")
}

func TestReadOptionSeesWhatGoTurnsOnForEveryConnection(t *testing.T) {
	conn := dialPlain(t, listener(t)).(syscall.Conn)
	// A boolean option reads back nonzero when it is on: 1 on Linux,
	// the option's own flag bit on the BSDs.
	keepAlive, err := readOption(conn, solSocket, soKeepAlive)
	require.NoError(t, err)
	assert.NotZero(t, keepAlive, "Go turns keep-alive on")
	noDelay, err := readOption(conn, ipprotoTCP, tcpNoDelay)
	require.NoError(t, err)
	assert.NotZero(t, noDelay, "Go turns Nagle's algorithm off")
}

func TestReadOptionSeesChangesMadeThroughTheNetPackage(t *testing.T) {
	conn := dialPlain(t, listener(t)).(*net.TCPConn)
	require.NoError(t, conn.SetKeepAlive(false))
	require.NoError(t, conn.SetNoDelay(false))
	keepAlive, err := readOption(conn, solSocket, soKeepAlive)
	require.NoError(t, err)
	assert.Zero(t, keepAlive)
	noDelay, err := readOption(conn, ipprotoTCP, tcpNoDelay)
	require.NoError(t, err)
	assert.Zero(t, noDelay)
}

func TestReadOptionWorksOnAListenerToo(t *testing.T) {
	ln := listener(t).(*net.TCPListener)
	size, err := readOption(ln, solSocket, soRcvBuf)
	require.NoError(t, err)
	assert.Positive(t, size)
}

func TestReadOptionOnAClosedConnectionFailsWithErrClosed(t *testing.T) {
	conn := dialPlain(t, listener(t))
	require.NoError(t, conn.Close())
	_, err := readOption(conn.(syscall.Conn), solSocket, soRcvBuf)
	assert.True(t, errors.Is(err, net.ErrClosed), "want net.ErrClosed, got %v", err)
}

func TestReadOptionReturnsTheSystemsErrorNumber(t *testing.T) {
	conn := dialPlain(t, listener(t)).(syscall.Conn)
	// No system has an option with this number.
	_, err := readOption(conn, solSocket, 0x7ffe)
	var errno syscall.Errno
	require.True(t, errors.As(err, &errno), "want a syscall.Errno in the chain, got %v", err)
	assert.NotZero(t, errno)
}

func TestCommandPrintsTheConnectionsOptions(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skipf("the values below are Linux's, not %s's", runtime.GOOS)
	}
	var out, errOut bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-rcvbuf", "8192"}, &out, &errOut), errOut.String())
	assert.Regexp(t, `^Control\("tcp4", "127\.0\.0\.1:\d+"\) before connect: SO_RCVBUF = 8192
SO_RCVBUF    16384
SO_KEEPALIVE 1
TCP_NODELAY  1
$`, out.String())
}

// listener listens on a free loopback port until the test ends. Nobody
// accepts: connections wait in its queue, which is all these tests need.
func listener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := nettest.NewLocalListener("tcp4")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dialRcvBuf calls dialWithRcvBuf and requires a connection, closed when
// the test ends.
func dialRcvBuf(t *testing.T, log *bytes.Buffer, addr string, size int) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := dialWithRcvBuf(ctx, log, addr, size)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// dialPlain connects without any option of its own.
func dialPlain(t *testing.T, ln net.Listener) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp4", ln.Addr().String(), wait)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}
