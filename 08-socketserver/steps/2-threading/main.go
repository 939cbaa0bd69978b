// Step 2 of 08-socketserver: every client gets its own goroutine.
//
// Step 1 was Python's TCPServer: a second client waited until the first
// had left. This is ThreadingTCPServer: the accept loop starts a
// goroutine for each client and goes straight back to Accept. The
// handler does not change. -sequential keeps step 1's behaviour.
//
// Try it: go run ./08-socketserver/steps/2-threading, then connect two
// clients (nc 127.0.0.1 9008) at once.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"net"
)

// A Handler talks to one client, like the handle method of Python's
// BaseRequestHandler. The server closes the connection when Handle
// returns.
type Handler interface {
	Handle(conn net.Conn)
}

// HandlerFunc lets an ordinary function be a Handler.
type HandlerFunc func(conn net.Conn)

// Handle calls f(conn).
func (f HandlerFunc) Handle(conn net.Conn) { f(conn) }

// Server accepts connections and gives each to Handler.
type Server struct {
	Handler    Handler
	Sequential bool // true: one client at a time (TCPServer)
}

// Serve accepts connections on ln and hands each to the handler:
// Python's serve_forever.
func (s *Server) Serve(ln net.Listener) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		if s.Sequential {
			// TCPServer: the next Accept waits until this client is done.
			s.handle(conn)
			continue
		}
		// ThreadingTCPServer: this client gets its own goroutine and
		// the loop goes straight back to Accept.
		go s.handle(conn)
	}
}

// handle runs the handler for one connection, then closes it.
func (s *Server) handle(conn net.Conn) {
	defer conn.Close()
	s.Handler.Handle(conn)
}

// upper answers every line with the same line in upper case, as the
// articles' echo server did with data.upper().
func upper(conn net.Conn) {
	lines := bufio.NewScanner(conn)
	for lines.Scan() {
		reply := append(upperASCII(lines.Bytes()), '\n')
		if _, err := conn.Write(reply); err != nil {
			return
		}
	}
}

// upperASCII upper-cases the ASCII letters and passes every other byte
// through, as Python's bytes.upper() does.
func upperASCII(line []byte) []byte {
	out := make([]byte, len(line), len(line)+1)
	for i, b := range line {
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		out[i] = b
	}
	return out
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9008", "host:port to listen on")
	sequential := flag.Bool("sequential", false, "serve one client at a time, like Python's TCPServer")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", ln.Addr())
	srv := &Server{Handler: HandlerFunc(upper), Sequential: *sequential}
	log.Fatal(srv.Serve(ln))
}
