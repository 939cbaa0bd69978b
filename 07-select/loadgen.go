//go:build linux || darwin

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// loadConn is one connection of the load generator, a small state
// machine driven by readiness events like the server's connections.
type loadConn struct {
	id        int
	fd        int
	connected bool
	greeted   bool
	done      int       // round trips completed
	wrote     int       // bytes of the current message sent
	got       int       // payload bytes of the current reply received
	sentAt    time.Time // when the current message started
	replies   replyCounter
	want      events
	stopped   bool // with -duration: its part of the timed phase is over
}

// loadgen is the articles' multi-connection client grown up: it opens
// cfg.conns connections without blocking (connect_ex in Python), sends
// cfg.messages messages on each, one at a time, timing every round trip,
// and prints one summary line.
//
// With cfg.duration it measures a steady load instead: it opens and
// greets every connection first, prints "steady conns=N", then keeps
// every connection making round trips for cfg.duration, and counts only
// the round trips that start and finish in that time. A connection whose
// round trip ends after it stops; the summary comes once all have
// stopped, and the connections are closed only after it, so that a
// measurement taken between the two lines sees neither the connecting
// nor the closing.
func loadgen(ctx context.Context, cfg loadConfig, stdout io.Writer) error {
	tcp, err := net.ResolveTCPAddr("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", cfg.addr, err)
	}
	family, sa := unix.AF_INET, unix.Sockaddr(nil)
	if ip4 := tcp.IP.To4(); ip4 != nil {
		sa4 := &unix.SockaddrInet4{Port: tcp.Port}
		copy(sa4.Addr[:], ip4)
		sa = sa4
	} else {
		family = unix.AF_INET6
		sa6 := &unix.SockaddrInet6{Port: tcp.Port}
		copy(sa6.Addr[:], tcp.IP.To16())
		sa = sa6
	}
	p, err := newPoller(cfg.poller, false)
	if err != nil {
		return err
	}
	defer p.close()
	wake, err := newWaker()
	if err != nil {
		return fmt.Errorf("pipe: %w", err)
	}
	defer wake.close()
	stopWake := context.AfterFunc(ctx, wake.wake)
	defer stopWake()
	if err := p.add(wake.r, canRead); err != nil {
		return err
	}

	// The message is a line of 'x's: no 'O' in it, so replyCounter can
	// tell the echoed payload from the "OK..." markers.
	msg := append(bytes.Repeat([]byte("x"), cfg.size-1), '\n')
	buf := make([]byte, 64<<10)
	steady := cfg.duration > 0
	var latencies []time.Duration
	if !steady {
		latencies = make([]time.Duration, 0, cfg.conns*cfg.messages)
	}
	byFD := map[int]*loadConn{}
	defer func() {
		for fd := range byFD {
			unix.Close(fd)
		}
	}()
	// active counts the connections still making round trips.
	active := cfg.conns
	finish := func(c *loadConn) {
		p.remove(c.fd)
		unix.Close(c.fd)
		delete(byFD, c.fd)
		active--
	}
	// stop ends a connection's part in the timed phase but keeps it open
	// (the deferred loop above closes it after the summary).
	stop := func(c *loadConn) {
		p.remove(c.fd)
		c.stopped = true
		active--
	}
	fail := func(c *loadConn, what string, err error) error {
		return fmt.Errorf("connection %d: %s %s: %w", c.id, what, cfg.addr, err)
	}

	start := time.Now()
	for i := 1; i <= cfg.conns; i++ {
		fd, err := newSocket(family)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, os.NewSyscallError("socket", err))
		}
		c := &loadConn{id: i, fd: fd, want: canWrite}
		byFD[fd] = c
		// Like the server, send each request at once (no Nagle delay).
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		// A non-blocking connect returns at once, usually with
		// EINPROGRESS: the handshake goes on in the kernel, and the
		// socket becomes writable when it is over.
		err = unix.Connect(fd, sa)
		if err != nil && err != unix.EINPROGRESS && err != unix.EINTR {
			return fail(c, "connect to", os.NewSyscallError("connect", err))
		}
		if err := p.add(fd, canWrite); err != nil {
			return err
		}
	}

	// watch changes what the poller watches c for, if it changed.
	watch := func(c *loadConn, want events) error {
		if want == c.want {
			return nil
		}
		c.want = want
		return p.modify(c.fd, want)
	}
	// send writes what the kernel takes of the current message.
	send := func(c *loadConn) error {
		if c.wrote == 0 {
			c.sentAt = time.Now()
		}
		n, err := retryEINTR(func() (int, error) { return unix.Write(c.fd, msg[c.wrote:]) })
		if err != nil && err != unix.EAGAIN {
			return fail(c, "send to", os.NewSyscallError("write", err))
		}
		c.wrote += n
		want := canRead
		if c.wrote < len(msg) {
			want = canWrite // the rest when there is room
		}
		return watch(c, want)
	}

	// With -duration, the timed phase starts once every connection has
	// been greeted, and ends at phaseEnd.
	greeted := 0
	var phaseEnd time.Time
	startPhase := func() error {
		// stdout is written at once (os.Stdout has no buffer), so a
		// program reading it through a pipe sees this line now.
		if _, err := fmt.Fprintf(stdout, "steady conns=%d\n", cfg.conns); err != nil {
			return err
		}
		phaseEnd = time.Now().Add(cfg.duration)
		for _, c := range byFD {
			if err := send(c); err != nil {
				return err
			}
		}
		return nil
	}

	progress := start
	for active > 0 {
		ready, err := p.wait(cfg.timeout)
		if err != nil {
			return err
		}
		// A wait that returns nothing timed out (or was interrupted):
		// give up once nothing at all has happened for -idle-timeout.
		if len(ready) > 0 {
			progress = time.Now()
		} else if time.Since(progress) >= cfg.timeout {
			return fmt.Errorf("load on %s: %w for %v", cfg.addr, errNoProgress, cfg.timeout)
		}
		for _, ev := range ready {
			if ev.fd == wake.r && wake.drain() {
				return ctx.Err()
			}
			c := byFD[ev.fd]
			if c == nil || c.stopped {
				continue
			}
			switch {
			case !c.connected:
				// Writable after a non-blocking connect: SO_ERROR says
				// whether the handshake worked.
				soerr, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
				if err == nil && soerr != 0 {
					err = syscall.Errno(soerr)
				}
				if err != nil {
					return fail(c, "connect to", os.NewSyscallError("connect", err))
				}
				c.connected = true
				if err := watch(c, canRead); err != nil {
					return err
				}
			case c.wrote < len(msg) && c.greeted && c.want == canWrite:
				// The rest of a message the kernel had no room for. (A
				// connection waiting for the timed phase is watched
				// for reading only: what it reads is a closed connection.)
				if err := send(c); err != nil {
					return err
				}
			default:
				n, err := retryEINTR(func() (int, error) { return unix.Read(c.fd, buf) })
				if err == unix.EAGAIN {
					continue
				}
				if err != nil {
					return fail(c, "read from", os.NewSyscallError("read", err))
				}
				if n == 0 {
					if steady {
						return fail(c, "read from", fmt.Errorf("server closed the connection after %d messages", c.done))
					}
					return fail(c, "read from", fmt.Errorf("server closed the connection after %d of %d messages", c.done, cfg.messages))
				}
				if !c.greeted {
					// The greeting is one line; the server sends nothing
					// else until we speak.
					if bytes.IndexByte(buf[:n], '\n') < 0 {
						continue
					}
					c.greeted = true
					greeted++
					if !steady {
						if err := send(c); err != nil {
							return err
						}
					} else if greeted == cfg.conns {
						if err := startPhase(); err != nil {
							return err
						}
					}
					continue
				}
				c.got += c.replies.feed(buf[:n])
				if c.got < len(msg) {
					continue
				}
				if c.got > len(msg) {
					return fail(c, "read from", fmt.Errorf("got %d bytes back for a %d-byte message", c.got, len(msg)))
				}
				now := time.Now()
				if steady && now.After(phaseEnd) {
					// Started in the phase but finished after it: not
					// counted, and this connection is done.
					stop(c)
					continue
				}
				latencies = append(latencies, now.Sub(c.sentAt))
				c.done, c.wrote, c.got = c.done+1, 0, 0
				if !steady && c.done == cfg.messages {
					finish(c)
					continue
				}
				if err := send(c); err != nil {
					return err
				}
			}
		}
	}
	elapsed, messages := time.Since(start), cfg.messages
	if steady {
		// The phase's length, and the round trips per connection on
		// average.
		elapsed = cfg.duration
		messages = (len(latencies) + cfg.conns/2) / cfg.conns
	}

	slices.Sort(latencies)
	fmt.Fprintf(stdout, "conns=%d messages=%d requests=%d seconds=%.3f rps=%.0f p50=%dus p99=%dus\n",
		cfg.conns, messages, len(latencies), elapsed.Seconds(),
		float64(len(latencies))/elapsed.Seconds(),
		percentile(latencies, 50).Microseconds(), percentile(latencies, 99).Microseconds())
	return nil
}

// percentile returns the value below which pct percent of the sorted
// durations fall.
func percentile(sorted []time.Duration, pct int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*pct+99)/100 - 1
	return sorted[max(i, 0)]
}

// replyCounter counts the echoed payload bytes in the server's replies,
// skipping the 5-byte "OK..." marker in front of every chunk. The stream
// may split or merge chunks anywhere, so it keeps how much of a marker is
// still to skip between calls. It relies on the load generator's
// messages never containing an 'O'.
type replyCounter struct {
	skip int
}

func (r *replyCounter) feed(p []byte) (payload int) {
	for _, b := range p {
		switch {
		case r.skip > 0:
			r.skip--
		case b == 'O':
			r.skip = len("OK...") - 1
		default:
			payload++
		}
	}
	return payload
}
