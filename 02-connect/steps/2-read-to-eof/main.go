// Step 2 of 02-connect: read until the server closes, so the whole reply
// arrives however the network cut it.
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"os"
)

func main() {
	addr := flag.String("addr", "example.com:80", "host:port of a web server")
	flag.Parse()
	if err := fetch(*addr, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// fetch sends a GET to addr and prints the reply, all of it.
func fetch(addr string, stdout io.Writer) error {
	// Dial resolves the name and connects: socket, connect, in one call.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()

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
