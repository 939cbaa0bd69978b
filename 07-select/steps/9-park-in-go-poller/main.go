//go:build linux || darwin

// Step 9: the loop waits in Go's own poller. Until step 8, the loop slept
// inside epoll_wait, a blocking system call, which Go's scheduler cannot
// tell from a stuck one: its monitor thread takes the processor from the
// loop and wakes other threads, and each return from epoll_wait has to
// win a processor back, at the cost of context switches. Now the epoll
// descriptor, readable whenever a socket it watches is ready, is handed
// to the runtime poller that waits for every net.Conn (epoll_linux.go):
// the loop's goroutine parks there, holding no thread, and epoll_wait is
// only ever asked without waiting. This file is step 8's but for this
// comment; kqueue on macOS still waits inside kevent.
package main

import (
	"container/list"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	greeting    = "welcome to 07-select: every message you send comes back after OK...\n"
	byeShutdown = "bye: server shutting down\n"
	maxPending  = 64 << 10 // stop reading a client whose unsent replies reach this
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9007", "IPv4 host:port to listen on")
	idleTimeout := flag.Duration("idle-timeout", 2*time.Minute, "close a client that sends nothing for this long")
	grace := flag.Duration("grace", 5*time.Second, "on Ctrl+C, how long clients get to take their last line")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	lfd, err := listen(*addr)
	if err != nil {
		log.Fatal(err)
	}
	p, err := newBestPoller()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", localAddr(lfd))
	serve(ctx, lfd, p, *idleTimeout, *grace, os.Stdout)
	fmt.Println("stopped")
}

// client is a connected socket, who is at the other end, and the
// replies that are still to be sent.
type client struct {
	fd      int
	peer    string
	out     []byte // replies the kernel has not taken yet
	want    events // what the poller watches this socket for
	leaving bool   // the client has sent all it will: close once out is sent

	lastActive time.Time     // when it last sent something
	age        *list.Element // its place in the list by last activity
}

// serve sleeps in the poller until some sockets are ready, then serves
// those, until ctx is done and the clients have had their goodbye.
func serve(ctx context.Context, lfd int, p poller, idleTimeout, grace time.Duration, out io.Writer) {
	if err := p.add(lfd, canRead); err != nil {
		log.Fatal(err)
	}
	// The self-pipe: when ctx is done, a byte written to the pipe makes
	// its read end readable, and that wakes the poller.
	var pipe [2]int
	if err := unix.Pipe(pipe[:]); err != nil {
		log.Fatal(err)
	}
	defer unix.Close(pipe[0])
	defer unix.Close(pipe[1])
	unix.SetNonblock(pipe[1], true)
	p.add(pipe[0], canRead)
	stopWaking := context.AfterFunc(ctx, func() { unix.Write(pipe[1], []byte{1}) })
	defer stopWaking()
	var graceEnd time.Time // when stopping: the end of the grace period
	// After EMFILE, the listener is out of the poller until retryAt.
	var retryAt time.Time
	var backoff time.Duration
	clients := map[int]*client{}
	// byAge holds the clients by last activity, the most recent in front.
	byAge := list.New()
	drop := func(c *client) {
		p.remove(c.fd)
		unix.Close(c.fd)
		delete(clients, c.fd)
		byAge.Remove(c.age)
	}
	buf := make([]byte, 4096)
	for {
		if !graceEnd.IsZero() && (len(clients) == 0 || time.Now().After(graceEnd)) {
			for _, c := range clients {
				fmt.Fprintf(out, "client %s did not finish within -grace, closed\n", c.peer)
				drop(c)
			}
			return
		}
		// Sleep until a socket is ready, or until the client at the
		// back of the list has been silent for idleTimeout, or until
		// the grace period ends, or until it is time to accept again.
		timeout := time.Duration(-1)
		if e := byAge.Back(); e != nil {
			timeout = max(time.Until(e.Value.(*client).lastActive.Add(idleTimeout)), 0)
		}
		for _, t := range []time.Time{graceEnd, retryAt} {
			if !t.IsZero() && (timeout < 0 || time.Until(t) < timeout) {
				timeout = max(time.Until(t), 0)
			}
		}
		ready, err := p.wait(timeout)
		if err != nil {
			log.Fatal(err)
		}
		if !retryAt.IsZero() && !time.Now().Before(retryAt) {
			retryAt = time.Time{}
			p.add(lfd, canRead)
		}
		for e := byAge.Back(); e != nil; e = byAge.Back() {
			c := e.Value.(*client)
			if time.Since(c.lastActive) < idleTimeout {
				break
			}
			fmt.Fprintf(out, "client %s idle, closed\n", c.peer)
			unix.Write(c.fd, fmt.Appendf(nil, "bye: idle for %v, closing\n", idleTimeout))
			drop(c)
		}
		for _, ev := range ready {
			// Ctrl+C: stop accepting, and say goodbye to everyone after
			// the replies they are still owed.
			if ev.fd == pipe[0] {
				if graceEnd.IsZero() {
					graceEnd = time.Now().Add(grace)
					if retryAt.IsZero() {
						p.remove(lfd)
					}
					retryAt = time.Time{}
					unix.Close(lfd)
					fmt.Fprintf(out, "shutting down: saying bye to %d clients\n", len(clients))
					for _, c := range clients {
						c.out = append(c.out, byeShutdown...)
						c.leaving, c.want = true, canWrite
						p.modify(c.fd, c.want)
					}
				}
				continue
			}
			// The listener is readable: somebody waits in the backlog.
			if ev.fd == lfd {
				fd, sa, err := unix.Accept(lfd)
				if err == unix.EMFILE || err == unix.ENFILE || err == unix.ENOBUFS || err == unix.ENOMEM {
					// Out of descriptors (or memory). Stop watching the
					// listener, and try again later, longer each time.
					if backoff == 0 {
						fmt.Fprintf(out, "accept: %v; retrying with a growing pause of up to 1s\n", err)
					}
					backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
					retryAt = time.Now().Add(backoff)
					p.remove(lfd)
				}
				if err == nil {
					backoff = 0
					unix.SetNonblock(fd, true)
					fmt.Fprintf(out, "client %s connected\n", peer(sa))
					// The greeting waits in out until the socket is writable.
					c := &client{fd: fd, peer: peer(sa), out: []byte(greeting), want: canRead | canWrite}
					c.lastActive, c.age = time.Now(), byAge.PushFront(c)
					clients[fd] = c
					p.add(fd, c.want)
				}
				continue
			}
			c, failed := clients[ev.fd], false
			if c == nil {
				continue // closed for being idle, just now
			}
			// Readable: the client has sent something, or has left.
			if ev.ready&canRead != 0 && c.want&canRead != 0 {
				n, err := unix.Read(c.fd, buf)
				switch {
				case err == unix.EAGAIN: // readiness is a hint, not a promise
				case err != nil:
					failed = true
				case n == 0:
					fmt.Fprintf(out, "client %s left\n", c.peer)
					c.leaving = true
				default:
					c.out = append(append(c.out, "OK..."...), buf[:n]...)
					c.lastActive = time.Now()
					byAge.MoveToFront(c.age)
				}
			}
			// Write what the kernel takes now, and keep the rest.
			if len(c.out) > 0 && !failed {
				n, err := unix.Write(c.fd, c.out)
				if err != nil && err != unix.EAGAIN {
					failed = true
				}
				c.out = c.out[max(n, 0):]
			}
			if failed || c.leaving && len(c.out) == 0 {
				drop(c)
				continue
			}
			// Ask to hear when there is room for the rest, and read no
			// more from a client that does not take its replies.
			var want events
			if !c.leaving && len(c.out) < maxPending {
				want |= canRead
			}
			if len(c.out) > 0 {
				want |= canWrite
			}
			if want != c.want {
				p.modify(c.fd, want)
				c.want = want
			}
		}
	}
}

// listen does by hand what net.Listen does, and makes the socket
// non-blocking: accept on it never waits.
func listen(addr string) (int, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return -1, fmt.Errorf("listen on %s: want an IPv4 address and port, such as 127.0.0.1:9007", addr)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, err
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		return -1, fmt.Errorf("bind %s: %w", addr, err)
	}
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		return -1, err
	}
	return fd, unix.SetNonblock(fd, true)
}

// localAddr is the address the socket really got (port 0 picks one).
func localAddr(fd int) string {
	sa, _ := unix.Getsockname(fd)
	return peer(sa)
}

// peer prints an IPv4 socket address as host:port.
func peer(sa unix.Sockaddr) string {
	if sa4, ok := sa.(*unix.SockaddrInet4); ok {
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), uint16(sa4.Port)).String()
	}
	return "?"
}
