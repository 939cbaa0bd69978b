// Step 3 of 02-connect: a time limit on connecting and on the reply, so
// a server that never answers cannot keep the client waiting forever.
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "example.com:80", "host:port of a web server")
	timeout := flag.Duration("timeout", 5*time.Second, "how long to wait to connect, and for the reply")
	flag.Parse()
	if err := fetch(*addr, *timeout, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// fetch sends a GET to addr and prints the reply, all of it.
func fetch(addr string, timeout time.Duration, stdout io.Writer) error {
	// Dial resolves the name and connects: socket, connect, in one call.
	// DialTimeout gives up when the connect is not answered in time.
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()

	// One deadline covers sending the request and reading the reply. It
	// is a point in time, Python's settimeout turned into a moment.
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}

	// An HTTP/1.1 request: the Host header names the site, "Connection:
	// close" asks the server to close after its reply, and a blank line
	// ends the request.
	request := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(conn, request); err != nil {
		return err
	}

	// A reply arrives in as many pieces as the network cuts it into,
	// and only the end of the stream (EOF, when the server closes) says
	// it is complete. io.Copy reads until then.
	_, err = io.Copy(stdout, conn)
	return err
}
