package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"time"
)

// runClient asks the server at addr for the time and prints it.
func runClient(addr string, rfc868 bool) {
	// Dialing UDP sends nothing: it only fixes where Write sends.
	conn, err := net.Dial("udp", addr)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	t, err := ask(conn, 500*time.Millisecond, 3, rfc868)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.UTC().Format(time.RFC3339))
}

// ask sends one empty datagram and waits for the 4-byte answer. A lost
// datagram never arrives, and nothing says so: ask waits at most wait,
// then sends again and waits twice as long, retries times at most.
func ask(conn net.Conn, wait time.Duration, retries int, rfc868 bool) (time.Time, error) {
	reply := make([]byte, 64*1024)
	for attempt := 0; ; attempt++ {
		if _, err := conn.Write(nil); err != nil {
			return time.Time{}, err
		}
		conn.SetReadDeadline(time.Now().Add(wait))
		n, err := conn.Read(reply)
		if errors.Is(err, os.ErrDeadlineExceeded) && attempt < retries {
			wait *= 2 // a busy network needs more time, not more traffic
			continue
		}
		if err != nil {
			return time.Time{}, err
		}
		if n != 4 {
			return time.Time{}, fmt.Errorf("a time is 4 bytes, got %d", n)
		}
		secs := int64(binary.BigEndian.Uint32(reply))
		return epoch(rfc868).Add(time.Duration(secs) * time.Second), nil
	}
}
