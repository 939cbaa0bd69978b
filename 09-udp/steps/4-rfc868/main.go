// Step 4 of 09-udp: -rfc868, the count that rdate reads.
//
// RFC 868, the "Time Protocol", counts the seconds from 1900, not 1970,
// and asks with an empty datagram only. With -rfc868 the server and the
// client speak it, so the real rdate client can ask this server:
//
//	go run ./09-udp/steps/4-rfc868 -rfc868           # the server
//	rdate -p -u -o 9009 127.0.0.1                    # in a second terminal
//	go run ./09-udp/steps/4-rfc868 -client -rfc868   # or this client
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9009", "host:port to listen on, or to ask with -client")
	client := flag.Bool("client", false, "ask the server at -addr for the time")
	rfc868 := flag.Bool("rfc868", false, "count seconds from 1900 as RFC 868 does, not from 1970")
	flag.Parse()
	if *client {
		runClient(*addr, *rfc868)
		return
	}
	// No Listen, no Accept: one socket receives from anybody.
	conn, err := net.ListenPacket("udp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", conn.LocalAddr())
	log.Fatal(serve(conn, *rfc868))
}

// epoch is when the count of seconds starts: 1970 as in the article,
// or 1900 as in RFC 868.
func epoch(rfc868 bool) time.Time {
	if rfc868 {
		return time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Unix(0, 0)
}

// serve answers every request that reaches conn with the time.
func serve(conn net.PacketConn, rfc868 bool) error {
	self := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	buf := make([]byte, 64*1024) // larger than any datagram
	for {
		// One ReadFrom is one whole datagram, and who sent it.
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return err
		}
		if !isRequest(buf[:n], from.(*net.UDPAddr).AddrPort(), self, rfc868) {
			continue // never answered, so it cannot start a loop
		}
		secs := time.Now().Unix() - epoch(rfc868).Unix()
		reply := binary.BigEndian.AppendUint32(nil, uint32(secs))
		conn.WriteTo(reply, from) // a failed send concerns one datagram: go on
	}
}

// isRequest reports whether a datagram from `from` asks for the time.
// A reply is 4 bytes, so 4 bytes never ask; a request is empty, as the
// article's client and rdate send, or, without -rfc868, zero bytes of
// another length. Nothing from the server's own address asks, nor from
// a port below 1024, where services such as echo answer whatever
// arrives.
func isRequest(datagram []byte, from, self netip.AddrPort, rfc868 bool) bool {
	if from.Addr().Unmap() == self.Addr().Unmap() && from.Port() == self.Port() {
		return false
	}
	if from.Port() < 1024 || len(datagram) == 4 || (rfc868 && len(datagram) > 0) {
		return false
	}
	for _, b := range datagram {
		if b != 0 {
			return false
		}
	}
	return true
}
