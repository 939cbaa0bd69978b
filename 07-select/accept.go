//go:build linux || darwin

package main

import (
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// acceptState is what the loop knows about accepting.
type acceptState struct {
	accepting bool          // the listener is in the poller
	retryAt   time.Time     // after EMFILE: when to try accepting again
	backoff   time.Duration // the wait before that retry, doubling
	// perIP counts the open connections from each client address, for
	// -max-conns-per-ip.
	perIP map[netip.Addr]int
	// byeTooMany is the line for a client over -max-conns-per-ip.
	byeTooMany []byte
}

// maxAcceptGap is the longest pause between two tries of accept after
// the process ran out of descriptors.
const maxAcceptGap = time.Second

// acceptFunc is acceptConn (in the platform's poller file). It is a
// variable only so that a test can stand in for the kernel and make
// accept fail in ways loopback never does, as the standard library's
// own tests do with poll.Accept4Func.
var acceptFunc = acceptConn

// accept takes every connection waiting in the backlog, up to
// -max-conns. Only a broken listener stops the server.
func (l *eventLoop) accept() error {
	for len(l.conns) < l.cfg.maxConns {
		fd, sa, err := acceptFunc(l.lfd)
		switch {
		case err == nil:
		case err == unix.EAGAIN:
			return nil // the backlog is empty
		case err == unix.EINTR || err == unix.ECONNABORTED:
			continue // a signal, or a client that gave up while queued
		case sa != nil:
			// The listener gave us a client, but setting up its socket
			// failed (on macOS, making it non-blocking is a call of its
			// own). That client is lost; the listener is fine.
			fmt.Fprintf(l.out, "client %s: %v\n", sockaddrString(sa), err)
			continue
		case err == unix.EMFILE || err == unix.ENFILE || err == unix.ENOBUFS || err == unix.ENOMEM:
			// Out of descriptors (or memory). The listener stays
			// readable, so retrying at once would spin: stop watching
			// it and try again later, waiting longer each time.
			if l.backoff == 0 {
				l.backoff = 5 * time.Millisecond
				fmt.Fprintf(l.out, "accept: %v; retrying with a growing pause of up to %v\n", err, maxAcceptGap)
			} else {
				l.backoff = min(2*l.backoff, maxAcceptGap)
			}
			l.retryAt = time.Now().Add(l.backoff)
			l.setAccepting(false)
			return nil
		default:
			return fmt.Errorf("accept: %w", err)
		}
		l.backoff = 0
		// Send every reply at once. Go's net package does this for each
		// TCP connection; by hand we must, or Nagle's algorithm holds
		// the tail of a reply back until the client's delayed ACK comes,
		// some 40 ms later. (It fails harmlessly on a Unix socket.)
		ip := sockaddrIP(sa)
		if l.cfg.maxPerIP > 0 && l.perIP[ip] >= l.cfg.maxPerIP {
			l.refuse(fd, sockaddrString(sa), ip)
			continue
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		c := &conn{fd: fd, peer: sockaddrString(sa), ip: ip, lastActive: time.Now(), want: canRead}
		if err := l.p.add(fd, canRead); err != nil {
			unix.Close(fd)
			fmt.Fprintf(l.out, "client %s: %v\n", c.peer, err)
			continue
		}
		c.age = l.byAge.PushFront(c)
		l.conns[fd] = c
		l.perIP[ip]++
		fmt.Fprintf(l.out, "client %s connected\n", c.peer)
		c.out = append(c.out, greeting...)
		l.flush(c)
	}
	// Full: stop watching the listener. Newcomers wait in the kernel's
	// backlog until somebody leaves, as with netutil.LimitListener.
	l.setAccepting(false)
	return nil
}

// refuse turns away a client whose address already has
// -max-conns-per-ip connections, so that one address (say, a client
// that trickles a byte now and then on many connections) cannot take
// every slot. The client is told why and closed at once: it never joins
// the loop, and takes no slot.
func (l *eventLoop) refuse(fd int, peer string, ip netip.Addr) {
	// The socket is new, so its send buffer is empty and takes the
	// line whole; it is non-blocking, so this never waits either way.
	unix.Write(fd, l.byeTooMany)
	// FIN after the line. Reading what the client already sent keeps
	// close from answering with RST, which could destroy the line.
	unix.Shutdown(fd, unix.SHUT_WR)
	unix.Read(fd, l.buf[len(marker):])
	unix.Close(fd)
	fmt.Fprintf(l.out, "client %s refused: already %d connections from %s (-max-conns-per-ip)\n",
		peer, l.perIP[ip], ip)
}

// mayAccept says whether the listener should be watched.
func (l *eventLoop) mayAccept() bool {
	return !l.stopping && l.retryAt.IsZero() && len(l.conns) < l.cfg.maxConns
}

func (l *eventLoop) setAccepting(on bool) {
	if on == l.accepting || l.lfd < 0 {
		return
	}
	var err error
	if on {
		err = l.p.add(l.lfd, canRead)
	} else {
		err = l.p.remove(l.lfd)
	}
	if err != nil {
		fmt.Fprintf(l.out, "listener: %v\n", err)
		return
	}
	l.accepting = on
}
