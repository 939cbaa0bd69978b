//go:build solution

// The reference solution: compare it with your starter.go once your
// tests pass, or when you are stuck.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

// counters are the live figures the stats command reports. Every client
// goroutine updates them while others read them, so each is an atomic
// integer: an Add or a Load is one indivisible step, with no lock and no
// lost update.
type counters struct {
	clientsNow   atomic.Int64 // clients connected right now
	clientsTotal atomic.Int64 // clients accepted since the start
	bytesIn      atomic.Int64 // bytes received from every client
	bytesOut     atomic.Int64 // bytes sent to every client
}

// report is the answer to stats: one "name value" per line, then END.
// Each counter is read once; the figures are a moment's snapshot, and
// may move on while the report is on its way.
func (s *server) report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "clients_now %d\n", s.count.clientsNow.Load())
	fmt.Fprintf(&b, "clients_total %d\n", s.count.clientsTotal.Load())
	fmt.Fprintf(&b, "bytes_in %d\n", s.count.bytesIn.Load())
	fmt.Fprintf(&b, "bytes_out %d\n", s.count.bytesOut.Load())
	fmt.Fprintf(&b, "uptime_seconds %d\n", int64(s.uptime()/time.Second))
	b.WriteString("END\n")
	return b.String()
}

// isStats reports whether line is the whole line "stats", ended by "\n"
// (nc) or "\r\n" (telnet).
func isStats(line []byte) bool {
	return string(line) == "stats\n" || string(line) == "stats\r\n"
}

// handle talks to one client until it leaves, goes quiet, stops reading,
// breaks the connection, or the server shuts down.
func (s *server) handle(ctx context.Context, conn *net.TCPConn) {
	// The client counts from before its greeting until its goroutine
	// ends, so a client that has read the greeting is counted.
	s.count.clientsNow.Add(1)
	s.count.clientsTotal.Add(1)
	defer s.count.clientsNow.Add(-1)

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
		startsLine := !midLine
		midLine = errors.Is(err, bufio.ErrBufferFull)
		s.count.bytesIn.Add(int64(len(line)))
		if len(line) > 0 {
			var answer []byte
			if startsLine && isStats(line) {
				answer = []byte(s.report())
			} else {
				answer = append(append(reply[:0], "OK..."...), line...)
			}
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
// replies cannot keep this goroutine forever, and counts what it wrote,
// even the part of a write that failed halfway.
func (s *server) send(conn *net.TCPConn, p []byte) error {
	if err := conn.SetWriteDeadline(time.Now().Add(s.idle)); err != nil {
		return err
	}
	n, err := conn.Write(p)
	s.count.bytesOut.Add(int64(n))
	return err
}
