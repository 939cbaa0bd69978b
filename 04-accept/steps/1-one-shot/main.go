// Step 1 of 04-accept: the one-shot server, as the article wrote it.
//
// Listen, accept one client, read once, write the same bytes back,
// close. Try it with telnet 127.0.0.1 9004 (or nc) in a second terminal.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9004", "host:port to listen on")
	flag.Parse()
	if err := serveOne(*addr, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// serveOne listens on addr, accepts one client and echoes one read.
func serveOne(addr string, stdout io.Writer) error {
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
