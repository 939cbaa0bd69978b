//go:build linux || darwin

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// loop is the whole server: one goroutine, one poll(2) call per round.
type loop struct {
	cfg   config
	log   io.Writer
	lfd   int // the listening socket
	wake  int // read end of the pipe that Ctrl+C writes to
	conns map[int]*conn
	idle  *sweeper // whose idle deadline comes next: your part
	buf   []byte   // the one read buffer every client shares
	pfds  []unix.PollFd
	order []*conn // order[i] is the client behind pfds[i+2]

	// After accept fails for want of descriptors, the loop stops
	// watching the listener until retryAt, and waits longer (backoff)
	// after each failure in a row.
	retryAt time.Time
	backoff time.Duration
}

// maxAcceptGap is the longest pause between two accept attempts while
// descriptors are short.
const maxAcceptGap = time.Second

// serve listens on cfg.addr and runs the loop until ctx is done.
func serve(ctx context.Context, cfg config, stdout io.Writer) error {
	lfd, addr, err := listenTCP(cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	defer unix.Close(lfd)

	// The loop sleeps in poll, so Ctrl+C must reach it as a readable
	// descriptor: a pipe, written by context.AfterFunc.
	var p [2]int
	if err := newPipe(p[:]); err != nil {
		return fmt.Errorf("pipe: %w", err)
	}
	woken := make(chan struct{})
	stopWake := context.AfterFunc(ctx, func() {
		unix.Write(p[1], []byte{1})
		close(woken)
	})
	defer func() {
		// If the wake-up has started, let it finish before the pipe
		// is closed (its descriptor could be reused meanwhile).
		if !stopWake() {
			<-woken
		}
		unix.Close(p[0])
		unix.Close(p[1])
	}()

	fmt.Fprintf(stdout, "listening on %s\n", addr)
	l := &loop{
		cfg: cfg, log: stdout, lfd: lfd, wake: p[0],
		conns: map[int]*conn{}, idle: newSweeper(cfg.idle),
		buf: make([]byte, chunkSize),
	}
	return l.run()
}

// run is the loop: close whoever has been idle too long, sleep in poll
// until a socket is ready or the next idle deadline comes, do the work
// that is ready, repeat. There is no timer and no goroutine per client:
// the next deadline is the poll timeout.
func (l *loop) run() error {
	defer l.closeAll()
	for {
		now := time.Now()
		l.sweep(now)
		timeout := time.Duration(-1) // no client: sleep until one comes
		if next, ok := l.idle.next(); ok {
			timeout = max(next.Sub(now), 0)
		}
		// Watch the listener, unless accept is pausing: then sleep no
		// longer than the pause.
		listen := int16(unix.POLLIN)
		if !l.retryAt.IsZero() {
			if pause := l.retryAt.Sub(now); pause > 0 {
				listen = 0
				if timeout < 0 || pause < timeout {
					timeout = pause
				}
			} else {
				l.retryAt = time.Time{}
			}
		}

		l.pfds = append(l.pfds[:0],
			unix.PollFd{Fd: int32(l.wake), Events: unix.POLLIN},
			unix.PollFd{Fd: int32(l.lfd), Events: listen})
		l.order = l.order[:0]
		for _, c := range l.conns {
			l.pfds = append(l.pfds, unix.PollFd{Fd: int32(c.fd), Events: interest(c)})
			l.order = append(l.order, c)
		}
		if l.cfg.onWait != nil {
			l.cfg.onWait(timeout)
		}
		_, err := unix.Poll(l.pfds, millis(timeout))
		if err == unix.EINTR {
			continue // a signal (Go's runtime sends SIGURG): ask again
		}
		if err != nil {
			return fmt.Errorf("poll: %w", err)
		}
		if l.pfds[0].Revents != 0 {
			fmt.Fprintln(l.log, "stopped")
			return nil
		}
		if listen != 0 && l.pfds[1].Revents != 0 {
			if err := l.accept(); err != nil {
				return err
			}
		}
		for i, c := range l.order {
			l.handle(c, l.pfds[i+2].Events, l.pfds[i+2].Revents)
		}
	}
}

// millis turns a timeout into the milliseconds poll takes, rounding
// up: rounding down would wake the loop just before a deadline, and it
// would spin until the deadline passed.
func millis(d time.Duration) int {
	if d < 0 {
		return -1
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

// sweep deals with every client whose idle deadline has passed. A
// silent client is told why and closed once it has the line; one that
// was told and is still there a whole -idle-timeout later (it does not
// read) is cut off.
func (l *loop) sweep(now time.Time) {
	for _, c := range l.idle.expired(now) {
		if l.conns[c.fd] != c {
			continue // gone already
		}
		if c.closing {
			fmt.Fprintf(l.log, "client %s did not take its last line, closed\n", c.peer)
			l.closeConn(c)
			continue
		}
		fmt.Fprintf(l.log, "client %s idle, closed\n", c.peer)
		c.closing = true
		l.idle.add(c, now) // one more -idle-timeout to take the line
		if l.send(c, []byte(fmt.Sprintf("bye: idle for %v, closing\n", l.cfg.idle))) {
			l.closeIfDone(c)
		}
	}
}

// handle does what one ready client allows. Readiness is a hint: a
// read or write may still say EAGAIN, and that is fine.
func (l *loop) handle(c *conn, asked, ready int16) {
	if ready == 0 || l.conns[c.fd] != c {
		return // not ready, or closed earlier in this round
	}
	// A hang-up or an error counts as ready for both: the next read
	// or write returns what happened.
	trouble := ready&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
	if len(c.out) > 0 && (ready&unix.POLLOUT != 0 || trouble) {
		if !l.flush(c) {
			return
		}
	}
	if asked&unix.POLLIN != 0 && (ready&unix.POLLIN != 0 || trouble) {
		if !l.read(c) {
			return
		}
	}
	l.closeIfDone(c)
}

// read takes one chunk from the client and answers "OK..." and the
// chunk. It returns false if the connection is gone.
func (l *loop) read(c *conn) bool {
	n, err := unix.Read(c.fd, l.buf)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return true // nothing there after all; poll will say when
	case err != nil:
		l.drop(c, err)
		return false
	case n == 0:
		c.eof = true
		if !c.closing {
			fmt.Fprintf(l.log, "client %s left\n", c.peer)
		}
		return true
	case c.closing:
		// It was told "bye": its input is read only so that closing
		// sends FIN rather than a reset, and is thrown away.
		return true
	}
	l.idle.touch(c, time.Now()) // it spoke: its deadline moves
	reply := append([]byte(marker), l.buf[:n]...)
	return l.send(c, reply)
}

// send queues reply and writes what the kernel takes now. It returns
// false if the connection is gone. (This is exercise-backpressure's
// solution.)
func (l *loop) send(c *conn, reply []byte) bool {
	c.out = append(c.out, reply...)
	return l.flush(c)
}

// flush writes as much of c.out as the kernel takes now, and returns
// false if the connection is gone.
func (l *loop) flush(c *conn) bool {
	for len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			break // the kernel's send buffer is full: wait for POLLOUT
		}
		if err != nil {
			l.drop(c, err)
			return false
		}
		c.out = c.out[n:]
		if !c.closing {
			l.idle.touch(c, time.Now()) // taking replies is activity too
		}
	}
	if len(c.out) == 0 {
		c.out = nil
	}
	return true
}

// interest says what poll should watch c for: POLLOUT while replies
// wait, POLLIN while one more reply fits and the client still sends.
func interest(c *conn) int16 {
	var want int16
	if len(c.out) > 0 {
		want |= unix.POLLOUT
	}
	if !c.eof && (c.closing || len(c.out)+len(marker)+chunkSize <= maxBuffered) {
		want |= unix.POLLIN
	}
	return want
}

// closeIfDone closes a client that has left or was told "bye", once
// it has every byte queued for it.
func (l *loop) closeIfDone(c *conn) {
	if l.conns[c.fd] == c && (c.eof || c.closing) && len(c.out) == 0 {
		l.closeConn(c)
	}
}

// acceptFunc is acceptConn. It is a variable only so that a test can
// stand in for the kernel and make accept fail as loopback never does.
var acceptFunc = acceptConn

// accept takes every connection waiting in the backlog and greets it.
// Only a broken listener stops the server.
func (l *loop) accept() error {
	for {
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
			// it and try again later, waiting longer each time, as
			// the lesson does. The clients wait in the backlog.
			if l.backoff == 0 {
				l.backoff = 5 * time.Millisecond
				fmt.Fprintf(l.log, "accept: %s; retrying with a growing pause of up to %v\n", explain(os.NewSyscallError("accept", err)), maxAcceptGap)
			} else {
				l.backoff = min(2*l.backoff, maxAcceptGap)
			}
			l.retryAt = time.Now().Add(l.backoff)
			return nil
		default:
			return fmt.Errorf("accept: %w", err)
		}
		if l.backoff > 0 {
			fmt.Fprintln(l.log, "accepting again")
			l.backoff = 0
		}
		c := &conn{fd: fd, peer: sockaddrString(sa)}
		l.conns[fd] = c
		l.idle.add(c, time.Now())
		fmt.Fprintf(l.log, "client %s connected\n", c.peer)
		l.send(c, []byte(greeting))
	}
}

// drop closes a connection that failed.
func (l *loop) drop(c *conn, err error) {
	if err == unix.ECONNRESET || err == unix.EPIPE {
		fmt.Fprintf(l.log, "client %s reset the connection\n", c.peer)
	} else {
		fmt.Fprintf(l.log, "client %s: %v\n", c.peer, err)
	}
	l.closeConn(c)
}

// closeConn forgets a connection: out of the sweeper, closed, gone.
func (l *loop) closeConn(c *conn) {
	l.idle.remove(c)
	unix.Close(c.fd)
	delete(l.conns, c.fd)
}

// closeAll closes every connection when the loop ends.
func (l *loop) closeAll() {
	for _, c := range l.conns {
		l.closeConn(c)
	}
}

// ---- sockets by hand, as in the lesson ----

// listenTCP does what net.Listen does: socket, SO_REUSEADDR, bind,
// listen. It returns the descriptor and the address it really got.
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

// The three helpers below make descriptors non-blocking and
// close-on-exec. Linux could do it in one call (SOCK_NONBLOCK,
// accept4, pipe2); macOS cannot, so they take the portable road, and
// hold ForkLock so that no child process is started in between, as
// Go's own net package does.

func newSocket(family int) (int, error) {
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(family, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, err
	}
	return fd, nonblock(fd)
}

func acceptConn(lfd int) (int, unix.Sockaddr, error) {
	syscall.ForkLock.RLock()
	fd, sa, err := unix.Accept(lfd)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, nil, err
	}
	return fd, sa, nonblock(fd)
}

func newPipe(p []int) error {
	syscall.ForkLock.RLock()
	err := unix.Pipe(p)
	if err == nil {
		unix.CloseOnExec(p[0])
		unix.CloseOnExec(p[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return err
	}
	if err := unix.SetNonblock(p[1], true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return err
	}
	return nil
}

func nonblock(fd int) error {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return err
	}
	return nil
}
