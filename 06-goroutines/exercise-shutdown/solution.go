//go:build solution

// The reference solution: compare it with your starter.go once your
// tests pass, or when you are stuck.
package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"time"
)

// serve listens on addr and serves clients until ctx is cancelled. Then
// it stops accepting, lets every client finish its job and hear
// goodbye, and waits for them, at most s.grace, before it returns nil.
func (s *server) serve(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer ln.Close()
	s.log.Printf("listening on %s", ln.Addr())

	// Step 1: a stopped context closes the listener, and only that. New
	// clients are refused from now on; the ones we have are not touched.
	stopAccept := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopAccept()

	s.acceptLoop(ctx, ln.(*net.TCPListener))
	s.log.Printf("shutting down")

	// Step 2: wait for every client goroutine. Each one finishes the job
	// it is doing, writes the reply, says goodbye and closes.
	done := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(done)
	}()
	grace := time.NewTimer(s.grace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		// Step 3, only if the grace period runs out: cut off what is
		// left, then wait again; that wait is short, since every
		// blocked Read, Write and job ends at once.
		s.log.Printf("grace period over")
		s.cutOff()
		<-done
	}
	s.log.Printf("stopped")
	return nil
}

// handle runs jobs for one client until it leaves or the server shuts
// down.
func (s *server) handle(ctx context.Context, conn *net.TCPConn) {
	who := conn.RemoteAddr().String()

	// At shutdown, a read deadline in the past wakes a client that is
	// waiting for its next line. A job in progress is not interrupted:
	// the deadline only concerns reads.
	stopWake := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stopWake()

	if err := send(conn, greeting); err != nil {
		conn.Close()
		return
	}
	in := bufio.NewReaderSize(conn, 1024)
	for {
		// Between two jobs is the moment to stop.
		if ctx.Err() != nil {
			break
		}
		line, err := in.ReadSlice('\n')
		if err != nil {
			// The client left, sent a line too long for the buffer,
			// broke the connection, or shutdown woke us.
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
	if ctx.Err() != nil {
		send(conn, "bye: server shutting down\n")
		s.log.Printf("client %s told and closed at shutdown", who)
	}
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
