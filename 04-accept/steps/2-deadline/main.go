// Step 2 of 04-accept: a deadline, so a silent client cannot hold the
// server forever.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9004", "host:port to listen on")
	idle := flag.Duration("idle-timeout", 30*time.Second, "how long to wait for the client to send something")
	flag.Parse()
	if err := serveOne(*addr, *idle, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// serveOne listens on addr, accepts one client and echoes one read.
func serveOne(addr string, idle time.Duration, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	// Print the real address: with port 0 the kernel chose the port.
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())

	// Accept waits for a client and returns a new connection to it.
	conn, err := ln.Accept()
	if err != nil {
		return err
	}
	defer conn.Close()

	// RemoteAddr is the client's IP address and the port its kernel chose.
	fmt.Fprintf(stdout, "client connected from %s\n", conn.RemoteAddr())

	// The deadline stops a silent client from holding the server
	// forever; it covers both the read and the echo.
	if err := conn.SetDeadline(time.Now().Add(idle)); err != nil {
		return err
	}

	// One Read returns whatever has arrived so far: maybe one line, maybe
	// part of one.
	buf := make([]byte, 1024)
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "received %d bytes: %q\n", n, buf[:n])

	// Write sends every byte or fails, like Python's sendall. Then the
	// deferred Close ends the connection.
	_, err = conn.Write(buf[:n])
	return err
}
