// Step 2 of 09-udp: a client that waits with a deadline, and sends again.
//
// The server is step 1's. The article's client waits for its reply for
// ever, and a lost datagram never arrives. This step's client (in
// client.go) waits half a second, sends again, and doubles the wait,
// three times before it gives up.
//
//	go run ./09-udp/steps/2-deadline-and-retries           # the server
//	go run ./09-udp/steps/2-deadline-and-retries -client   # in a second terminal
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
