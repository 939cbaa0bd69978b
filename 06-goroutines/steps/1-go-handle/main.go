// Step 1 of 06-goroutines: 05's server with one change, `go handle(...)`.
//
// 05-loop served one client at a time: the next one waited in the backlog
// until the first left. Here the accept loop hands each connection to a
// goroutine of its own and goes straight back to Accept, so every client
// is greeted and answered at once. Run it, then nc 127.0.0.1 9006 in two
// terminals: both are answered.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9006", "host:port to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", ln.Addr())
	log.Fatal(acceptLoop(ln, log.New(os.Stdout, "", 0)))
}

// acceptLoop starts a goroutine for each client of ln; they log to logs
// (stdout here; tests pass their own).
func acceptLoop(ln net.Listener, logs *log.Logger) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		go handle(conn, logs) // the whole lesson: don't wait for it
	}
}

// handle greets the client, then answers each chunk it sends, until the
// client leaves or the connection breaks.
func handle(conn net.Conn, logs *log.Logger) {
	defer conn.Close()
	logs.Printf("client %s connected", conn.RemoteAddr())
	fmt.Fprint(conn, "welcome to 06-goroutines: every message you send comes back after OK...\n")
	buf := make([]byte, 1024)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return // io.EOF: the client left
		}
		conn.Write(append([]byte("OK..."), buf[:n]...))
	}
}
