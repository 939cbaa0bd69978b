//go:build linux || darwin

// Step 4: back-pressure. Step 3 keeps every reply a client has not taken
// yet, so a client that sends and never reads makes the server hold
// everything it sends, without bound. Now the loop stops reading a client
// whose unsent replies reach maxPending: it drops POLLIN for that socket.
// The client's data waits in the kernel's buffers, which fill up, and
// then its own writes block. Everybody else is still served.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/netip"
	"os"
	"slices"

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
	fmt.Println("listening on", localAddr(lfd))
	serve(lfd, os.Stdout)
}

// client is a connected socket, who is at the other end, and the
// replies that are still to be sent.
type client struct {
	fd      int
	peer    string
	out     []byte // replies the kernel has not taken yet
	leaving bool   // the client has sent all it will: close once out is sent
}

// serve sleeps in poll until some sockets are ready, then serves
// those. fds[0] is the listener; each client i is fds[i+1].
func serve(lfd int, out io.Writer) {
	fds := []unix.PollFd{{Fd: int32(lfd), Events: unix.POLLIN}}
	var clients []*client
	buf := make([]byte, 4096)
	for {
		// -1: no timeout. Only readiness (or a signal: EINTR) wakes us.
		if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
			log.Fatal(err)
		}
		// The listener is readable: somebody waits in the backlog.
		if fds[0].Revents != 0 {
			if fd, sa, err := unix.Accept(lfd); err == nil {
				unix.SetNonblock(fd, true)
				fmt.Fprintf(out, "client %s connected\n", peer(sa))
				// The greeting waits in out until the socket is writable.
				clients = append(clients, &client{fd: fd, peer: peer(sa), out: []byte(greeting)})
				fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN | unix.POLLOUT})
			}
		}
		for i := 0; i < len(clients); i++ {
			if fds[i+1].Revents == 0 {
				continue
			}
			c, failed := clients[i], false
			// Readable: the client has sent something, or has left.
			if fds[i+1].Events&unix.POLLIN != 0 {
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
				unix.Close(c.fd)
				clients = slices.Delete(clients, i, i+1)
				fds = slices.Delete(fds, i+1, i+2)
				i--
				continue
			}
			// Ask to hear when there is room for the rest (POLLOUT), and
			// read no more from a client that does not take its replies.
			fds[i+1].Events = 0
			if !c.leaving && len(c.out) < maxPending {
				fds[i+1].Events |= unix.POLLIN
			}
			if len(c.out) > 0 {
				fds[i+1].Events |= unix.POLLOUT
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
