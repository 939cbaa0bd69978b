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
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

const (
	greeting     = "welcome to 07-select: every message you send comes back after OK...\n"
	byeShutdown  = "bye: server shutting down\n"
	chunkSize    = 4096 // one read, as in 05 and 06
	marker       = "OK..."
	maxPending   = 64 << 10 // stop reading a client whose unsent replies reach this
	resumeBelow  = 16 << 10 // ... and start again once they drain below this
	maxAcceptGap = time.Second
	drainTime    = time.Second // after FIN, how long to discard input
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
		conns: map[int]*conn{}, byAge: list.New(), draining: list.New(),
		perIP: map[netip.Addr]int{},
		buf:   append([]byte(marker), make([]byte, chunkSize)...),
		byeTooMany: fmt.Appendf(nil, "bye: too many connections from your address (limit %d), closing\n",
			cfg.maxPerIP),
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
	wake  *waker
	conns map[int]*conn
	// perIP counts the open connections from each client address, for
	// -max-conns-per-ip.
	perIP map[netip.Addr]int
	// byAge orders connections by last activity, most recent in front,
	// so the next one to time out is always at the back.
	byAge *list.List
	// draining holds connections whose write side is shut, oldest first.
	draining *list.List
	// buf is the one buffer all connections share: "OK..." followed by
	// room for one read, so a reply is written straight from it.
	buf []byte
	// byeTooMany is the line for a client over -max-conns-per-ip.
	byeTooMany []byte
	// now is the time the loop last looked at the clock: before and
	// after each wait. Idle timeouts are counted in seconds; reading
	// the clock for every message would cost more than it tells.
	now time.Time

	accepting bool          // the listener is in the poller
	retryAt   time.Time     // after EMFILE: when to try accepting again
	backoff   time.Duration // the wait before that retry, doubling
	stopping  bool
	graceEnd  time.Time
}

// run is the loop: wait for readiness, do the work that is ready, repeat.
func (l *eventLoop) run() error {
	defer func() {
		if l.lfd >= 0 {
			unix.Close(l.lfd)
		}
	}()
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
	if len(c.out) >= maxPending && !c.paused {
		// The client sends faster than it reads its replies. Stop
		// reading it until they drain: its own kernel buffers fill
		// up and its writes block, while everybody else is served.
		c.paused = true
		if !c.warned {
			c.warned = true
			fmt.Fprintf(l.out, "client %s is not reading its replies; stopped reading it until they drain\n", c.peer)
		}
	}
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
	if c.paused && len(c.out) < resumeBelow {
		c.paused = false
	}
	if c.closing && len(c.out) == 0 {
		if c.eof {
			l.closeConn(c)
			return false
		}
		if !c.shut {
			// Send FIN, then read and discard until the client closes
			// too: closing with unread input would send RST, and the
			// client could lose the last line.
			c.shut = true
			unix.Shutdown(c.fd, unix.SHUT_WR)
			c.drainUntil = time.Now().Add(drainTime)
			if l.stopping && l.graceEnd.Before(c.drainUntil) {
				c.drainUntil = l.graceEnd
			}
			l.byAge.Remove(c.age)
			c.age = l.draining.PushBack(c)
		}
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

// touch records activity: c moves to the front of the age list.
func (l *eventLoop) touch(c *conn) {
	if c.shut {
		return // on the draining list, with its own deadline
	}
	c.lastActive = l.now
	l.byAge.MoveToFront(c.age)
}

// expireIdle tells clients that have been silent for -idle-timeout why
// they are closed. A client already being closed that stays stuck for
// another -idle-timeout (it never reads) is cut off.
func (l *eventLoop) expireIdle(now time.Time) {
	// Connections that got FIN and did not close in time are closed.
	for e := l.draining.Front(); e != nil; e = l.draining.Front() {
		c := e.Value.(*conn)
		if now.Before(c.drainUntil) {
			break
		}
		l.closeConn(c)
	}
	for e := l.byAge.Back(); e != nil; e = l.byAge.Back() {
		c := e.Value.(*conn)
		if now.Sub(c.lastActive) < l.cfg.idleTimeout {
			return
		}
		if c.closing {
			fmt.Fprintf(l.out, "client %s did not take its last line, closed\n", c.peer)
			l.closeConn(c)
			continue
		}
		fmt.Fprintf(l.out, "client %s idle, closed\n", c.peer)
		c.closing = true
		c.out = append(c.out, fmt.Sprintf("bye: idle for %v, closing\n", l.cfg.idleTimeout)...)
		l.touch(c)
		l.flush(c)
	}
}

// timeout is how long the poller may sleep: until the next idle
// deadline, accept retry or the end of the grace period; for ever if
// there is none. An idle server sleeps in the kernel and uses no CPU.
func (l *eventLoop) timeout(now time.Time) time.Duration {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if e := l.byAge.Back(); e != nil {
		consider(e.Value.(*conn).lastActive.Add(l.cfg.idleTimeout))
	}
	if e := l.draining.Front(); e != nil {
		consider(e.Value.(*conn).drainUntil)
	}
	consider(l.retryAt)
	if l.stopping {
		consider(l.graceEnd)
	}
	if next.IsZero() {
		return -1
	}
	return max(next.Sub(now), 0)
}

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
	l.p.remove(c.fd)
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

// beginShutdown stops accepting and says goodbye to every client. The
// loop goes on until they have all taken their last line, or -grace ends.
func (l *eventLoop) beginShutdown(now time.Time) {
	if l.stopping {
		return
	}
	l.stopping = true
	l.graceEnd = now.Add(l.cfg.grace)
	l.setAccepting(false)
	unix.Close(l.lfd)
	l.lfd = -1
	fmt.Fprintf(l.out, "shutting down: saying bye to %d clients\n", len(l.conns))
	for _, c := range l.conns {
		if c.closing {
			continue // already on its way out
		}
		c.closing = true
		c.out = append(c.out, byeShutdown...)
		l.flush(c)
	}
}

// closeRemaining closes whatever is left when the loop ends.
func (l *eventLoop) closeRemaining() {
	for _, c := range l.conns {
		if !c.shut {
			fmt.Fprintf(l.out, "client %s did not finish within -grace, closed\n", c.peer)
		}
		l.closeConn(c)
	}
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

// waker is the self-pipe: writing a byte makes the read end readable,
// which wakes the poller from another goroutine.
type waker struct {
	mu     sync.Mutex
	r, w   int
	closed bool
}

func newWaker() (*waker, error) {
	r, w, err := newPipe()
	if err != nil {
		return nil, err
	}
	return &waker{r: r, w: w}, nil
}

// wake is safe to call from any goroutine, even after close.
func (w *waker) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		unix.Write(w.w, []byte{1}) // EAGAIN means it is awake already
	}
}

// drain empties the pipe and reports whether anything was in it.
func (w *waker) drain() (woken bool) {
	var b [64]byte
	for {
		if n, err := unix.Read(w.r, b[:]); n <= 0 || err != nil {
			return woken
		}
		woken = true
	}
}

func (w *waker) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	unix.Close(w.r)
	unix.Close(w.w)
}
