//go:build !solution

// Your work: the counters, the report, and the places in handle and send
// that keep the counters up to date. Run the tests with
//
//	go test -tags exercise ./06-goroutines/exercise-stats/
//	go test -race -tags exercise ./06-goroutines/exercise-stats/
//
// They fail until the server does what README.md asks. As given, the
// server is lesson 06's, reading whole lines: it answers every line,
// "stats" included, with "OK..." and the line.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// counters are the live figures the stats command reports. Every client
// goroutine updates them while others read them.
type counters struct {
	// TODO: clients_now, clients_total, bytes_in and bytes_out. Many
	// goroutines change them at once: use sync/atomic's atomic.Int64,
	// not a plain int (go test -race tells you why).
}

// report is the answer to stats: one "name value" per line, then END.
func (s *server) report() string {
	// TODO: "clients_now N", "clients_total N", "bytes_in N",
	// "bytes_out N", "uptime_seconds N" (whole seconds of s.uptime()),
	// each on its own line, in this order, then "END".
	return "END\n"
}

// handle talks to one client until it leaves, goes quiet, stops reading,
// breaks the connection, or the server shuts down.
func (s *server) handle(ctx context.Context, conn *net.TCPConn) {
	// TODO: count the client in clients_now and clients_total, and out
	// of clients_now when this function returns.

	who := conn.RemoteAddr().String()
	s.log.Printf("client %s connected", who)

	// On shutdown, a read deadline in the past wakes the read below. The
	// loop then sees ctx is done and says goodbye.
	stopWake := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stopWake()

	if err := s.send(conn, []byte(greeting)); err != nil {
		s.hangUp(conn, who, err)
		return
	}

	// A command needs whole lines, so the client's bytes go through a
	// bufio.Reader. Its buffer of 4096 bytes and the reply's are all the
	// memory a client gets: a longer line is answered in pieces, the way
	// lesson 06 answers each chunk.
	in := bufio.NewReaderSize(conn, 4096)
	reply := make([]byte, 0, len("OK...")+4096)
	// midLine is true while the pieces of a line longer than the buffer
	// arrive: such a piece is never a whole line, so never a command,
	// even when it reads "stats\n".
	midLine := false
	for {
		conn.SetReadDeadline(time.Now().Add(s.idle))
		if ctx.Err() != nil {
			s.goodbye(conn, who, "bye: server shutting down\n", "closed at shutdown")
			return
		}
		line, err := in.ReadSlice('\n')
		startsLine := !midLine // the piece begins a line
		_ = startsLine         // TODO: use it below, then delete this line
		midLine = errors.Is(err, bufio.ErrBufferFull)
		// TODO: count the bytes received in bytes_in.
		if len(line) > 0 {
			// TODO: the whole line "stats" ("stats\n", or "stats\r\n"
			// from telnet) is answered with s.report() instead, but
			// only if startsLine: the end of a longer line is not a
			// command.
			answer := append(append(reply[:0], "OK..."...), line...)
			if err := s.send(conn, answer); err != nil {
				s.hangUp(conn, who, err)
				return
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
			continue
		case ctx.Err() != nil:
			s.goodbye(conn, who, "bye: server shutting down\n", "closed at shutdown")
		case isTimeout(err):
			s.goodbye(conn, who, fmt.Sprintf("bye: idle for %v, closing\n", s.idle), "idle, closed")
		case errors.Is(err, io.EOF):
			closeGracefully(conn)
			s.log.Printf("client %s left", who)
		default:
			s.hangUp(conn, who, err)
		}
		return
	}
}

// send writes p with a deadline, so a client that never reads its
// replies cannot keep this goroutine forever.
func (s *server) send(conn *net.TCPConn, p []byte) error {
	if err := conn.SetWriteDeadline(time.Now().Add(s.idle)); err != nil {
		return err
	}
	_, err := conn.Write(p)
	// TODO: count the bytes written in bytes_out, even when the write
	// failed halfway (n tells how many went out).
	return err
}
