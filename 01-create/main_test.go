package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

func TestCreatesASocketOfEachFamilyAndType(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.familyName+"/"+k.typeName, func(t *testing.T) {
			if runtime.GOOS == "windows" && k.family == afUnix && k.typ == sockDgram {
				t.Skip("Windows has AF_UNIX stream sockets only, no datagrams")
			}
			s, err := newSocket(k.family, k.typ, k.proto)
			if err != nil && k.family == afInet6 && !nettest.SupportsIPv6() {
				t.Skipf("IPv6 is switched off on this machine: %v", err)
			}
			if err != nil && k.family == afUnix && isErrno(err, syscall.EAFNOSUPPORT) {
				t.Skipf("this Windows has no AF_UNIX (Windows 10 1803 added it; Wine 8.0 lacks it): %v", err)
			}
			require.NoError(t, err, k.call())
			defer closeSocket(s)

			// The kernel remembers what the socket was created as.
			typ, err := getInt(s, solSocket, soType)
			require.NoError(t, err)
			assert.Equal(t, k.typ, typ, "SO_TYPE should read back the type given to socket()")
		})
	}
}

func TestNewSocketHasEveryOptionOff(t *testing.T) {
	tcp := mustSocket(t, afInet, sockStream)
	for _, o := range options {
		if o.opt == soType {
			continue // a type, not an on/off option
		}
		t.Run(o.name, func(t *testing.T) {
			if o.opt == soDontRoute && runtime.GOOS == "windows" {
				t.Skip("Windows ignores SO_DONTROUTE on IPv4 sockets, and Microsoft's documentation allows a provider to report a constant value for it")
			}
			v, err := getInt(tcp, solSocket, o.opt)
			require.NoError(t, err)
			assert.Equal(t, 0, v, "%s should start off on a new socket", o.name)
		})
	}
}

func TestSetsockoptValueReadsBackWithGetsockopt(t *testing.T) {
	tcp := mustSocket(t, afInet, sockStream)
	udp := mustSocket(t, afInet, sockDgram)
	for _, c := range []struct {
		name string
		s    sock
		opt  int
	}{
		{"SO_REUSEADDR", tcp, soReuseAddr},
		{"SO_KEEPALIVE", tcp, soKeepAlive},
		{"SO_OOBINLINE", tcp, soOOBInline},
		{"SO_BROADCAST", udp, soBroadcast},
		{"SO_DONTROUTE", udp, soDontRoute},
	} {
		t.Run(c.name, func(t *testing.T) {
			if runtime.GOOS == "windows" && c.opt == soDontRoute {
				t.Skip("Windows accepts SO_DONTROUTE on IPv4 sockets but ignores it")
			}
			// On, then off again: the value read back follows each change.
			for _, want := range []int{1, 0} {
				got, err := setAndGet(c.s, solSocket, c.opt, want)
				require.NoError(t, err)
				assert.Equal(t, want, got, "set to %d", want)
			}
		})
	}
}

func TestSO_RCVBUFReadsBackDoubledOnLinuxOnly(t *testing.T) {
	tcp := mustSocket(t, afInet, sockStream)
	got, err := setAndGet(tcp, solSocket, soRcvBuf, 8192)
	require.NoError(t, err)
	if runtime.GOOS == "linux" {
		// Linux stores twice the request: half for data, half for its
		// own bookkeeping of the buffers. socket(7) documents it.
		assert.Equal(t, 16384, got)
		return
	}
	assert.Equal(t, 8192, got)
}

func TestCreatingAnUnsupportedFamilyFailsWithEAFNOSUPPORT(t *testing.T) {
	_, err := newSocket(9999, sockStream, 0)
	require.Error(t, err, "no system has an address family 9999")
	assert.True(t, isErrno(err, syscall.EAFNOSUPPORT),
		"want EAFNOSUPPORT, got %v", err)
	assert.Contains(t, explain(err), "(see docs/errors.md#eafnosupport)")
}

func TestGoListenersAlreadySetReuseAddrExceptOnWindows(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	defer ln.Close()
	raw, err := ln.(*net.TCPListener).SyscallConn()
	require.NoError(t, err)

	got, err := readOption(raw, solSocket, soReuseAddr)
	require.NoError(t, err)
	if runtime.GOOS == "windows" {
		// There SO_REUSEADDR would let another socket take over a port
		// in use, so Go leaves it off.
		assert.Equal(t, 0, got)
		return
	}
	assert.Equal(t, 1, got, "net.Listen sets SO_REUSEADDR before bind, so a restarted server can bind at once")
}

func TestListenConfigControlSetsAnOptionBeforeBind(t *testing.T) {
	var log bytes.Buffer
	ln, err := listenWithRcvBuf(context.Background(), &log, "127.0.0.1:0", 8192)
	require.NoError(t, err)
	defer ln.Close()

	// Control ran while the address was still to be bound: it was given
	// the address asked for, port 0, not the port the kernel then chose.
	assert.Contains(t, log.String(), `Control("tcp4", "127.0.0.1:0")`)
	assert.NotContains(t, ln.Addr().String(), ":0", "after Listen the socket has a real port")

	raw, err := ln.(*net.TCPListener).SyscallConn()
	require.NoError(t, err)
	got, err := readOption(raw, solSocket, soRcvBuf)
	require.NoError(t, err)
	want := 8192
	if runtime.GOOS == "linux" {
		want *= 2
	}
	assert.Equal(t, want, got, "SyscallConn should read back what Control set")
}

func TestGoTurnsOnKeepAliveAndNoDelayForTCPConnections(t *testing.T) {
	ln, err := nettest.NewLocalListener("tcp")
	require.NoError(t, err)
	defer ln.Close()
	client, err := net.DialTimeout("tcp", ln.Addr().String(), wait)
	require.NoError(t, err)
	defer client.Close()
	require.NoError(t, ln.(*net.TCPListener).SetDeadline(time.Now().Add(wait)))
	server, err := ln.Accept()
	require.NoError(t, err)
	defer server.Close()

	// A bare socket starts with both off (TestNewSocketHasEveryOptionOff);
	// Go's dialled and accepted TCP connections have both on.
	for side, conn := range map[string]net.Conn{"dialled": client, "accepted": server} {
		raw, err := conn.(*net.TCPConn).SyscallConn()
		require.NoError(t, err)
		keepAlive, err := readOption(raw, solSocket, soKeepAlive)
		require.NoError(t, err)
		assert.NotZero(t, keepAlive, "SO_KEEPALIVE on the %s connection", side)
		noDelay, err := readOption(raw, ipprotoTCP, tcpNoDelay)
		require.NoError(t, err)
		assert.NotZero(t, noDelay, "TCP_NODELAY on the %s connection", side)
	}
}

func TestRunWalksThroughAllFiveSteps(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, run(ctx, nil, &out, io.Discard))
	for step := 1; step <= 5; step++ {
		assert.Regexp(t, fmt.Sprintf(`(?m)^%d\. `, step), out.String(), "step %d is missing", step)
	}
	// Everything stays on this machine: the only address is loopback.
	assert.Contains(t, out.String(), "listening on 127.0.0.1:")
}

func TestExplainPointsToTheCatalogue(t *testing.T) {
	for _, c := range []struct {
		err    error
		anchor string
	}{
		{syscall.EAFNOSUPPORT, "eafnosupport"},
		{syscall.EPERM, "eperm"},
		{syscall.EACCES, "eacces"},
		{syscall.EMFILE, "emfile"},
	} {
		wrapped := fmt.Errorf("socket(AF_INET, SOCK_RAW, IPPROTO_ICMP): %w", c.err)
		assert.Contains(t, explain(wrapped), "(see docs/errors.md#"+c.anchor+")", "%v", c.err)
	}
}

func TestBadFlagIsAUsageError(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-no-such-flag"}, io.Discard, &stderr)
	assert.ErrorIs(t, err, errUsage)
	assert.Contains(t, stderr.String(), "-rcvbuf")
}

func TestRcvbufOutsideItsRangeIsAUsageError(t *testing.T) {
	for _, v := range []string{"0", "-1", "2000000000"} {
		err := run(context.Background(), []string{"-rcvbuf", v}, io.Discard, io.Discard)
		assert.ErrorIs(t, err, errUsage, "-rcvbuf %s", v)
	}
}

func TestHelpIsNotAnError(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-h"}, io.Discard, &stderr)
	assert.ErrorIs(t, err, flag.ErrHelp, "main exits 0 on flag.ErrHelp")
	assert.Contains(t, stderr.String(), "-rcvbuf")
}
