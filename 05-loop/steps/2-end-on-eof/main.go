// Step 2: end the conversation when the client leaves. Read returns the
// bytes that arrived, or an error: io.EOF once the client has closed its
// side. So answer the n bytes first, then stop at any error, and go back
// to Accept for the next client.
//
// Still, one client at a time: the next one waits until this one leaves
// (lesson 06 serves them all at once), and a client that never leaves
// keeps everyone waiting forever.
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
		n, err := conn.Read(buf)
		if n > 0 {
			conn.Write(append([]byte("OK..."), buf[:n]...))
		}
		if err != nil { // io.EOF: the client left
			fmt.Fprintf(stdout, "client %s left\n", conn.RemoteAddr())
			return
		}
	}
}
