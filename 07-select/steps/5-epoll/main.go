//go:build linux || darwin

// Step 5: epoll and kqueue, behind one interface. poll hands the kernel
// the whole list of sockets on every call, and the kernel checks every
// one: with thousands of idle clients, each wake-up costs thousands of
// checks to find the one socket that is ready. epoll (Linux) and kqueue
// (macOS, the BSDs) keep the list inside the kernel, and a wait returns
// only the ready sockets. The loop now talks to a small poller interface
// (poller.go), as Python's selectors module does, with poll, epoll and
// kqueue behind it.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

const (
	greeting   = "welcome to 07-select: every message you send comes back after OK...\n"
	maxPending = 64 << 10 // stop reading a client whose unsent replies reach this
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9007", "IPv4 host:port to listen on")
	flag.Parse()
	lfd, err := listen(*addr)
	if err != nil {
		log.Fatal(err)
	}
	p, err := newBestPoller()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", localAddr(lfd))
	serve(lfd, p, os.Stdout)
}

// client is a connected socket, who is at the other end, and the
// replies that are still to be sent.
type client struct {
	fd      int
	peer    string
	out     []byte // replies the kernel has not taken yet
	want    events // what the poller watches this socket for
	leaving bool   // the client has sent all it will: close once out is sent
}

// serve sleeps in the poller until some sockets are ready, then serves
// those. The poller reports each ready socket by its descriptor.
func serve(lfd int, p poller, out io.Writer) {
	if err := p.add(lfd, canRead); err != nil {
		log.Fatal(err)
	}
	clients := map[int]*client{}
	buf := make([]byte, 4096)
	for {
		ready, err := p.wait(-1)
		if err != nil {
			log.Fatal(err)
		}
		for _, ev := range ready {
			// The listener is readable: somebody waits in the backlog.
			if ev.fd == lfd {
				if fd, sa, err := unix.Accept(lfd); err == nil {
					unix.SetNonblock(fd, true)
					fmt.Fprintf(out, "client %s connected\n", peer(sa))
					// The greeting waits in out until the socket is writable.
					c := &client{fd: fd, peer: peer(sa), out: []byte(greeting), want: canRead | canWrite}
					clients[fd] = c
					p.add(fd, c.want)
				}
				continue
			}
			c, failed := clients[ev.fd], false
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
				p.remove(c.fd)
				unix.Close(c.fd)
				delete(clients, c.fd)
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
