//go:build !solution

// Your work: a shutdown that loses nothing. Run the tests with
//
//	go test -tags exercise ./06-goroutines/exercise-shutdown/
//
// They fail until serve and handle do what README.md asks. As given,
// Ctrl+C cuts every client off at once: replies of jobs in progress are
// lost, and nobody is told why the connection ended.
package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"time"
)

// serve listens on addr and serves clients until ctx is cancelled.
func (s *server) serve(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer ln.Close()
	s.log.Printf("listening on %s", ln.Addr())

	// TODO: close only the listener when ctx is cancelled. Cutting
	// everyone off here is what loses the replies.
	stopAccept := context.AfterFunc(ctx, func() {
		ln.Close()
		s.cutOff()
	})
	defer stopAccept()

	s.acceptLoop(ctx, ln.(*net.TCPListener))
	s.log.Printf("shutting down")

	// TODO: wait for every client goroutine (s.handlers), at most
	// s.grace. If the grace period runs out, log "grace period over",
	// call s.cutOff(), and wait for them again.
	s.log.Printf("stopped")
	return nil
}

// handle runs jobs for one client until it leaves or the server shuts
// down.
func (s *server) handle(ctx context.Context, conn *net.TCPConn) {
	who := conn.RemoteAddr().String()

	// TODO: when ctx is cancelled, wake the read below with a read
	// deadline in the past (context.AfterFunc), but let a job in
	// progress finish and its reply be written.

	if err := send(conn, greeting); err != nil {
		conn.Close()
		return
	}
	in := bufio.NewReaderSize(conn, 1024)
	for {
		line, err := in.ReadSlice('\n')
		if err != nil {
			break
		}
		reply := s.work(who, string(line))
		if reply == "" {
			conn.Close() // cutOff stopped the job and closed conn
			return
		}
		if err := send(conn, reply); err != nil {
			conn.Close()
			return
		}
	}
	// TODO: at shutdown, send "bye: server shutting down" first.
	closeGracefully(conn)
}

// send writes one line with a deadline, so a client that does not read
// cannot hold its goroutine, and the shutdown, forever.
func send(conn *net.TCPConn, line string) error {
	if err := conn.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	_, err := conn.Write([]byte(line))
	return err
}
