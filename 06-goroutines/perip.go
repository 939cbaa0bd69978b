// -max-conns-per-ip: one address may not take every slot.

package main

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// open adds conn to the open connections, and reports whether its IP
// address has room for one more client to be served. (Unmap: an IPv4
// client of a listener on [::] counts as its IPv4 address.)
func (s *server) open(conn *net.TCPConn) (netip.Addr, bool) {
	ip := conn.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns[conn] = struct{}{}
	if s.maxPerIP > 0 && s.perIP[ip] >= s.maxPerIP {
		return ip, false
	}
	s.perIP[ip]++
	return ip, true
}

// close undoes open.
func (s *server) close(conn *net.TCPConn, ip netip.Addr, admitted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, conn)
	if admitted {
		if s.perIP[ip]--; s.perIP[ip] == 0 {
			delete(s.perIP, ip)
		}
	}
}

// turnAway tells a client that its address has too many connections,
// and closes it cleanly. Until the client closes too (a second at most),
// the connection keeps its slot of -max-conns.
func (s *server) turnAway(conn *net.TCPConn) {
	conn.SetWriteDeadline(time.Now().Add(time.Second)) // a new socket's buffer has room
	fmt.Fprintf(conn, "bye: too many connections from your address (limit %d), closing\n", s.maxPerIP)
	closeGracefully(conn)
	s.log.Printf("client %s turned away: too many connections from its address (limit %d)", conn.RemoteAddr(), s.maxPerIP)
}
