// Step 1 of 09-udp: the article's UDP time server.
//
// It answers every datagram with the time: 4 bytes, the seconds since
// 1970, most significant byte first. The article's client sends an
// empty datagram and waits for those 4 bytes; the lesson's client does
// the same:
//
//	go run ./09-udp/steps/1-time-server   # the server
//	go run ./09-udp -client               # in a second terminal
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"net"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9009", "host:port to listen on")
	flag.Parse()
	// No Listen, no Accept: one socket receives from anybody.
	conn, err := net.ListenPacket("udp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", conn.LocalAddr())
	log.Fatal(serve(conn))
}

// serve answers every datagram that reaches conn with the time.
func serve(conn net.PacketConn) error {
	buf := make([]byte, 64*1024) // larger than any datagram
	for {
		// One ReadFrom is one whole datagram, and who sent it.
		_, from, err := conn.ReadFrom(buf)
		if err != nil {
			return err
		}
		reply := binary.BigEndian.AppendUint32(nil, uint32(time.Now().Unix()))
		conn.WriteTo(reply, from) // a failed send concerns one datagram: go on
	}
}
