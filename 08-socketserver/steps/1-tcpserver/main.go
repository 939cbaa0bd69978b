// Step 1 of 08-socketserver: Python's socketserver, bare, in Go.
//
// socketserver splits a server in two. The server owns the listening
// socket and the accept loop; a handler class, with its handle method,
// owns one conversation. Here the handler is an interface, as in
// net/http, and this server is Python's TCPServer: it serves one client
// at a time. The handler answers each line in upper case.
//
// Try it: go run ./08-socketserver/steps/1-tcpserver, then in a second
// terminal nc 127.0.0.1 9008 (or telnet) and type a line.
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
	Handler Handler
}

// Serve accepts connections on ln, one at a time, and hands each to the
// handler: Python's serve_forever.
func (s *Server) Serve(ln net.Listener) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		s.handle(conn)
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
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", ln.Addr())
	srv := &Server{Handler: HandlerFunc(upper)}
	log.Fatal(srv.Serve(ln))
}
