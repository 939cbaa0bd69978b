// Step 1 of 02-connect: connect, send an HTTP GET, read once, as the
// article did with recv(4096).
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

// fetch sends a GET to addr and prints what one Read returns.
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

	// One Read returns whatever has arrived so far, up to 4096 bytes.
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	_, err = stdout.Write(buf[:n])
	return err
}
