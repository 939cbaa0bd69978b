// Step 1: the articles' server in Go. Accept sits in a loop, and each
// client is greeted and answered, one client after another: whatever it
// sends comes back after "OK...".
//
// It has the articles' bug: the inner loop never looks at Read's error.
// Run it, connect with nc, and quit nc: the server never notices.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
)

const greeting = "welcome to 05-loop: every message you send comes back after OK...\n"

func main() {
	addr := flag.String("addr", "127.0.0.1:9005", "host:port to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", ln.Addr())
	log.Fatal(acceptLoop(ln, os.Stdout))
}

// acceptLoop serves the clients of ln one after another; it logs to
// stdout (tests pass their own writer).
func acceptLoop(ln net.Listener, stdout io.Writer) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		handle(conn, stdout)
	}
}

// handle greets the client, then answers each chunk it sends.
func handle(conn net.Conn, stdout io.Writer) {
	defer conn.Close()
	fmt.Fprintf(stdout, "client %s connected\n", conn.RemoteAddr())
	conn.Write([]byte(greeting))
	buf := make([]byte, 4096)
	for {
		n, _ := conn.Read(buf) // the bug: Read's error is thrown away
		conn.Write(append([]byte("OK..."), buf[:n]...))
	}
}
