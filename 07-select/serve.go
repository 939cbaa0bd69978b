//go:build linux || darwin

package main

import (
	"container/list"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// serve listens on cfg.addr and runs the event loop until ctx is done.
func serve(ctx context.Context, cfg config, stdout io.Writer) error {
	lfd, addr, err := listenTCP(cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	defer func() {
		if lfd >= 0 {
			unix.Close(lfd)
		}
	}()
	p, err := newPoller(cfg.poller, cfg.busy)
	if err != nil {
		return err
	}
	defer p.close()

	// The loop sleeps inside the poller, so Ctrl+C has to reach it as
	// a ready descriptor: a pipe we watch, written by context.AfterFunc
	// (the "self-pipe trick").
	wake, err := newWaker()
	if err != nil {
		return fmt.Errorf("pipe: %w", err)
	}
	defer wake.close()
	stopWake := context.AfterFunc(ctx, wake.wake)
	defer stopWake()

	// The log goes through a queue that never blocks: a reader of
	// stdout that stops costs log lines, never service. At the end, the
	// queue gets until the end of the grace period to empty.
	logq := newLogQueue(stdout)
	fmt.Fprintf(logq, "listening on %s\n", addr)
	fmt.Fprintf(logq, "waiting for events with %v\n", p)
	l := newEventLoop(cfg, logq, p)
	l.lfd, l.wake = lfd, wake
	lfd = -1 // the loop owns it now
	err = l.run()
	if l.lfd >= 0 {
		unix.Close(l.lfd) // the loop failed before it began to shut down
	}
	flushBy := l.graceEnd
	if !l.stopping {
		flushBy = time.Now().Add(cfg.grace) // the loop failed: no grace began
	}
	logq.close(flushBy)
	return err
}

// newEventLoop is a loop with no listener and no connections yet.
func newEventLoop(cfg config, out io.Writer, p poller) *eventLoop {
	return &eventLoop{
		cfg: cfg, out: out, p: p, lfd: -1,
		conns:     map[int]*conn{},
		buf:       append([]byte(marker), make([]byte, chunkSize)...),
		idleState: idleState{byAge: list.New(), draining: list.New()},
		acceptState: acceptState{perIP: map[netip.Addr]int{},
			byeTooMany: fmt.Appendf(nil, "bye: too many connections from your address (limit %d), closing\n", cfg.maxPerIP)},
	}
}

// listenTCP does by hand what net.Listen does: socket, SO_REUSEADDR,
// bind, listen. It returns the descriptor and the address it really got.
func listenTCP(addr string) (int, string, error) {
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return -1, "", err
	}
	var sa unix.Sockaddr
	family := unix.AF_INET
	if ip4 := tcp.IP.To4(); ip4 != nil || tcp.IP == nil {
		sa4 := &unix.SockaddrInet4{Port: tcp.Port}
		copy(sa4.Addr[:], ip4) // a nil IP listens on every IPv4 address
		sa = sa4
	} else {
		family = unix.AF_INET6
		sa6 := &unix.SockaddrInet6{Port: tcp.Port}
		copy(sa6.Addr[:], tcp.IP)
		sa = sa6
	}
	fd, err := newSocket(family)
	if err != nil {
		return -1, "", os.NewSyscallError("socket", err)
	}
	// SO_REUSEADDR lets a restarted server bind while old connections
	// linger in TIME_WAIT (lesson 03); net.Listen sets it too.
	steps := []struct {
		name string
		do   func() error
	}{
		{"setsockopt", func() error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) }},
		{"bind", func() error { return unix.Bind(fd, sa) }},
		{"listen", func() error { return unix.Listen(fd, unix.SOMAXCONN) }},
	}
	for _, step := range steps {
		if err := step.do(); err != nil {
			unix.Close(fd)
			return -1, "", os.NewSyscallError(step.name, err)
		}
	}
	local, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, "", os.NewSyscallError("getsockname", err)
	}
	return fd, sockaddrString(local), nil
}

// sockaddrIP is the IP address of a socket address, without the port.
func sockaddrIP(sa unix.Sockaddr) netip.Addr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(sa.Addr)
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(sa.Addr).Unmap()
	}
	return netip.Addr{}
}

// sockaddrString prints a socket address the way net.Addr does.
func sockaddrString(sa unix.Sockaddr) string {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)).String()
	}
	return fmt.Sprint(sa)
}

// retryEINTR repeats a system call that a signal interrupted.
func retryEINTR(call func() (int, error)) (int, error) {
	for {
		n, err := call()
		if err != unix.EINTR {
			if err != nil {
				n = 0
			}
			return n, err
		}
	}
}
