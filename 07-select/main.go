//go:build linux || darwin

// Lesson 07-select: many clients with one goroutine and a readiness loop.
//
// Lesson 06 gave every client its own goroutine, and Go's runtime did
// the waiting for all of them. This lesson does that waiting by hand, the
// way Python's selectors module, nginx and Node.js do: every socket is
// non-blocking, and one loop asks the kernel "which of these sockets can
// I read or write without blocking?" (poll, epoll or kqueue), then does
// exactly that much work and asks again.
//
// This file is the loop. serve.go sets it up; each extra has a file of
// its own (the back-ends, backpressure.go, idle.go, accept.go, shutdown.go).
package main

import (
	"container/list"
	"fmt"
	"io"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

const (
	greeting  = "welcome to 07-select: every message you send comes back after OK...\n"
	chunkSize = 4096 // one read, as in 05 and 06
	marker    = "OK..."
)

// conn is everything the loop knows about one client. There is no
// goroutine and no stack per client: just this, which is why an idle
// connection costs a few hundred bytes.
type conn struct {
	fd         int
	peer       string
	ip         netip.Addr    // peer without the port: the key of eventLoop.perIP
	out        []byte        // replies the kernel has not taken yet
	want       events        // what the poller watches this socket for
	age        *list.Element // place in eventLoop.byAge
	lastActive time.Time
	drainUntil time.Time // when shut: close at this time at the latest
	paused     bool      // too many unsent replies: not reading for now
	warned     bool      // said so once in the log
	closing    bool      // no more replies: flush, then close
	shut       bool      // write side closed (FIN sent); discarding input
	eof        bool      // the client has finished sending
}

// eventLoop is the whole server: one goroutine, one loop.
type eventLoop struct {
	cfg   config
	out   io.Writer
	p     poller
	lfd   int
	conns map[int]*conn
	// buf is the one buffer all connections share: "OK..." followed by
	// room for one read, so a reply is written straight from it.
	buf []byte
	// now is the time the loop last looked at the clock: before and
	// after each wait. Idle timeouts are counted in seconds; reading
	// the clock for every message would cost more than it tells.
	now time.Time

	idleState     // idle.go: the clients in order of last activity
	acceptState   // accept.go: limits, and pauses after EMFILE
	shutdownState // shutdown.go: Ctrl+C and the grace period
}

// run is the loop: wait for readiness, do the work that is ready, repeat.
func (l *eventLoop) run() error {
	if err := l.p.add(l.wake.r, canRead); err != nil {
		return err
	}
	l.setAccepting(true)
	for {
		l.now = time.Now()
		now := l.now
		l.expireIdle(now)
		if !l.retryAt.IsZero() && !now.Before(l.retryAt) {
			l.retryAt = time.Time{}
			l.setAccepting(l.mayAccept())
		}
		if l.stopping && (len(l.conns) == 0 || !now.Before(l.graceEnd)) {
			l.closeRemaining()
			fmt.Fprintln(l.out, "stopped")
			return nil
		}

		ready, err := l.p.wait(l.timeout(now))
		l.now = time.Now()
		if err != nil {
			l.closeRemaining()
			return err
		}
		for _, ev := range ready {
			switch {
			case ev.fd == l.wake.r:
				// Only a byte in the pipe means "stop"; readiness alone
				// may be spurious (the busy loop reports it every time).
				if l.wake.drain() {
					l.beginShutdown(l.now)
				}
			case ev.fd == l.lfd && l.accepting:
				if err := l.accept(); err != nil {
					l.closeRemaining()
					return err
				}
			default:
				l.serveReady(ev)
			}
		}
	}
}

// serveReady does what one ready client socket allows. Readiness is a
// hint, not a promise: reads and writes may still say EAGAIN, and the
// loop must be fine with that.
func (l *eventLoop) serveReady(ev event) {
	c := l.conns[ev.fd]
	if c == nil {
		return // closed earlier in this batch
	}
	if ev.ready&canWrite != 0 && len(c.out) > 0 {
		if !l.flush(c) {
			return
		}
	}
	if ev.ready&canRead != 0 && c.want&canRead != 0 {
		l.read(c)
	}
}

// read takes one chunk from the client and sends the reply.
func (l *eventLoop) read(c *conn) {
	n, err := retryEINTR(func() (int, error) { return unix.Read(c.fd, l.buf[len(marker):]) })
	switch {
	case err == unix.EAGAIN:
		return // nothing there after all
	case err != nil:
		l.drop(c, err)
		return
	case n == 0:
		// End of stream: the client has finished sending. Send what
		// is still queued, then close.
		c.eof = true
		if !c.closing {
			c.closing = true
			fmt.Fprintf(l.out, "client %s left\n", c.peer)
		}
		l.flush(c)
		return
	case c.closing:
		// We are saying goodbye: input is read only so that closing
		// sends FIN rather than RST, and is thrown away.
		return
	}
	l.touch(c)
	reply := l.buf[:len(marker)+n]
	if len(c.out) == 0 {
		// Nothing queued before it, so the reply may go out at once,
		// straight from the shared buffer. Usually the kernel takes it
		// all and nothing is copied; what it leaves is queued below.
		sent, err := retryEINTR(func() (int, error) { return unix.Write(c.fd, reply) })
		if err != nil && err != unix.EAGAIN {
			l.drop(c, err)
			return
		}
		reply = reply[sent:]
	}
	c.out = append(c.out, reply...)
	l.holdBack(c)
	l.flush(c)
}

// flush writes as much of c.out as the kernel takes now, and returns
// false if the connection is gone. A write may take only part of the
// bytes, or none (EAGAIN): the rest waits for the socket to be writable.
func (l *eventLoop) flush(c *conn) bool {
	for len(c.out) > 0 {
		n, err := retryEINTR(func() (int, error) { return unix.Write(c.fd, c.out) })
		if err == unix.EAGAIN {
			break // the kernel's send buffer is full
		}
		if err != nil {
			l.drop(c, err)
			return false
		}
		c.out = c.out[n:]
		l.touch(c)
	}
	if len(c.out) == 0 {
		c.out = nil // an idle connection keeps no buffer
	}
	l.resume(c)
	if c.closing && len(c.out) == 0 && !l.sayGoodbye(c) {
		return false
	}
	return l.update(c)
}

// update tells the poller what c waits for now, if that changed.
func (l *eventLoop) update(c *conn) bool {
	var want events
	if len(c.out) > 0 {
		want |= canWrite
	}
	if !c.eof && (c.closing || !c.paused) {
		want |= canRead
	}
	if want == c.want {
		return true
	}
	if err := l.p.modify(c.fd, want); err != nil {
		l.drop(c, err)
		return false
	}
	c.want = want
	return true
}

// drop closes a connection that failed.
func (l *eventLoop) drop(c *conn, err error) {
	if err == unix.ECONNRESET || err == unix.EPIPE {
		fmt.Fprintf(l.out, "client %s reset the connection\n", c.peer)
	} else {
		fmt.Fprintf(l.out, "client %s: %v\n", c.peer, err)
	}
	l.closeConn(c)
}

// closeConn forgets a connection: out of the poller, closed, gone.
func (l *eventLoop) closeConn(c *conn) {
	if _, ok := l.conns[c.fd]; !ok {
		return
	}
	l.p.forget(c.fd) // before the close: a new client may reuse the number
	unix.Close(c.fd)
	delete(l.conns, c.fd)
	if l.perIP[c.ip]--; l.perIP[c.ip] <= 0 {
		delete(l.perIP, c.ip)
	}
	if c.shut {
		l.draining.Remove(c.age)
	} else {
		l.byAge.Remove(c.age)
	}
	l.setAccepting(l.mayAccept())
}
