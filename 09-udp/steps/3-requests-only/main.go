// Step 3 of 09-udp: the server answers requests, never replies.
//
// Anybody can forge the source address of a datagram. Steps 1 and 2
// answer every datagram, so one datagram forged from the server's own
// address makes it answer itself forever, and one forged from a second
// server makes the two answer each other forever. This server answers
// only what no reply can be, and nothing from its own address or from a
// port below 1024.
//
//	go run ./09-udp/steps/3-requests-only           # the server
//	go run ./09-udp/steps/3-requests-only -client   # in a second terminal
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
	flag.Parse()
	if *client {
		runClient(*addr)
		return
	}
	// No Listen, no Accept: one socket receives from anybody.
	conn, err := net.ListenPacket("udp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", conn.LocalAddr())
	log.Fatal(serve(conn))
}

// serve answers every request that reaches conn with the time.
func serve(conn net.PacketConn) error {
	self := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	buf := make([]byte, 64*1024) // larger than any datagram
	for {
		// One ReadFrom is one whole datagram, and who sent it.
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return err
		}
		if !isRequest(buf[:n], from.(*net.UDPAddr).AddrPort(), self) {
			continue // never answered, so it cannot start a loop
		}
		reply := binary.BigEndian.AppendUint32(nil, uint32(time.Now().Unix()))
		conn.WriteTo(reply, from) // a failed send concerns one datagram: go on
	}
}

// isRequest reports whether a datagram from `from` asks for the time.
// A reply is 4 bytes, so 4 bytes never ask; a request is empty, as the
// article's client sends, or zero bytes of another length. Nothing from
// the server's own address asks, nor from a port below 1024, where
// services such as echo answer whatever arrives.
func isRequest(datagram []byte, from, self netip.AddrPort) bool {
	if from.Addr().Unmap() == self.Addr().Unmap() && from.Port() == self.Port() {
		return false
	}
	if from.Port() < 1024 || len(datagram) == 4 {
		return false
	}
	for _, b := range datagram {
		if b != 0 {
			return false
		}
	}
	return true
}
