//go:build exercise || solution

package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests guard main.go, the part given to you: they pass on the
// starter as on the solution.

func TestClientsBeyondMaxConnsWaitForASlot(t *testing.T) {
	srv := startServer(t, "-max-conns", "1")
	a := connect(t, srv.addr)

	// The second waits in the backlog: no greeting yet. A short read
	// deadline shows it (nothing can prove a greeting never comes).
	conn, err := net.DialTimeout("tcp", srv.addr, wait)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(150*time.Millisecond)))
	_, err = conn.Read(make([]byte, 1))
	require.True(t, errors.Is(err, os.ErrDeadlineExceeded), "no greeting while every slot is taken, got %v", err)

	// The first leaves: the second is greeted.
	require.NoError(t, a.Close())
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(wait)))
	line, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, greeting, line)
}

func TestOneAddressCannotTakeEverySlot(t *testing.T) {
	srv := startServer(t, "-max-conns", "3", "-max-conns-per-ip", "2")
	connect(t, srv.addr)
	connect(t, srv.addr)

	// A third from the same address is told why, and closed with FIN.
	conn, err := net.DialTimeout("tcp", srv.addr, wait)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(wait)))
	got, err := io.ReadAll(conn)
	require.NoError(t, err, "want a clean end of stream (FIN), not a reset")
	assert.Equal(t, "bye: too many connections from your address (limit 2), closing\n", string(got))
	srv.out.waitFor(t, "refused")

	// A client from another address still gets the slot that is left.
	d := net.Dialer{Timeout: wait, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	other, err := d.Dial("tcp", srv.addr)
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2 on this system: %v", err)
	}
	defer other.Close()
	require.NoError(t, other.SetDeadline(time.Now().Add(wait)))
	r := bufio.NewReader(other)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, greeting, line)
	_, err = io.WriteString(other, "work 1ms\n")
	require.NoError(t, err)
	line, err = r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "done 1ms\n", line)
}

func TestBadLimitFlagsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"-max-conns", "0"}, {"-max-conns-per-ip", "-1"}} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		assert.ErrorIs(t, err, errUsage, "%v", args)
	}
}

func TestAcceptLoopKeepsAcceptingWhileOutOfFileDescriptors(t *testing.T) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer ln.Close()
	fake := &failingListener{TCPListener: ln, errno: syscall.EMFILE, fails: 3}
	out := newLines()
	jobs, cancelJobs := context.WithCancel(context.Background())
	defer cancelJobs()
	s := &server{
		log: log.New(out, "", 0), grace: wait, jobs: jobs, cancelJobs: cancelJobs,
		maxConns: 10, perIP: &addrCounts{n: map[netip.Addr]int{}}, conns: map[*net.TCPConn]struct{}{},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var loop sync.WaitGroup
	loop.Add(1)
	go func() {
		defer loop.Done()
		s.acceptLoop(ctx, fake)
	}()

	// The client waits in the backlog through three failures, then is
	// served: the loop backed off and tried again.
	c := connect(t, ln.Addr().String())
	c.send(t, "work 1ms\n")
	assert.Equal(t, "done 1ms\n", c.line(t))
	assert.Contains(t, out.waitFor(t, "accept failed"), "docs/errors.md#emfile")
	out.waitFor(t, "accepting again after 3 failed attempts")

	c.Close()
	ln.Close()
	loop.Wait()
	s.handlers.Wait()
}

// failingListener fails its first Accepts with errno, the way a kernel
// out of descriptors does, then accepts for real.
type failingListener struct {
	*net.TCPListener
	errno syscall.Errno
	mu    sync.Mutex
	fails int
}

func (l *failingListener) AcceptTCP() (*net.TCPConn, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept", l.errno)}
	}
	l.mu.Unlock()
	return l.TCPListener.AcceptTCP()
}
