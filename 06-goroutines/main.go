// Lesson 06-goroutines: one goroutine per client, many clients at once.
// The accept loop does nothing but accept; each connection gets its own
// goroutine running handle, so a slow or silent client holds up nobody
// else. The protocol is 05's and 07's: a greeting line, then "OK..." and
// each chunk it reads. Beside it: closing.go, perip.go, logqueue.go,
// cli.go, client.go.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"sync"
	"time"
)

// greeting is the first line every client receives.
const greeting = "welcome to 06-goroutines: every message you send comes back after OK...\n"

// server holds what the connection goroutines share.
type server struct {
	idle     time.Duration // -idle-timeout, for each Read and each Write
	grace    time.Duration // -grace, for the shutdown
	maxPerIP int           // -max-conns-per-ip; 0 is no limit
	stdout   io.Writer
	log      *log.Logger

	handlers sync.WaitGroup // the connection goroutines, for shutdown

	mu    sync.Mutex
	conns map[*net.TCPConn]struct{} // every open connection, for shutdown
	perIP map[netip.Addr]int        // clients served per IP address
}

// serve listens on addr and starts one goroutine per client until ctx is
// cancelled; then it says goodbye to each and waits, at most -grace.
func (s *server) serve(ctx context.Context, addr string, maxConns int) error {
	// Go's net turns TCP keep-alive on for every accepted connection,
	// at the cost of four setsockopt calls each. Keep-alive finds a
	// peer that vanished without a word; -idle-timeout finds it too,
	// so this server asks for none (a negative KeepAlive).
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer ln.Close()
	logs := newLogQueue(s.stdout) // a stdout nobody reads must not stop us
	s.log = log.New(logs, "", 0)
	// Print the real address: with port 0 the kernel chose the port.
	s.log.Printf("listening on %s", ln.Addr())

	// Closing the listener is what wakes a blocked Accept.
	stopAccept := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopAccept()

	s.acceptLoop(ctx, ln.(*net.TCPListener), maxConns)

	deadline := time.Now().Add(s.grace)
	s.log.Printf("shutting down")
	s.shutdown(deadline)
	s.log.Printf("stopped")
	logs.close(deadline)
	return nil
}

// tcpAcceptor is what the accept loop needs: *net.TCPListener, or a
// test's stand-in that fails on purpose.
type tcpAcceptor interface {
	AcceptTCP() (*net.TCPConn, error)
}

// acceptLoop hands each new connection to its own goroutine. It returns
// only when the listener is closed.
func (s *server) acceptLoop(ctx context.Context, ln tcpAcceptor, maxConns int) {
	// slots is a semaphore of -max-conns: the loop takes a slot before
	// Accept, the goroutine gives it back when its client leaves. With
	// every slot taken, new clients wait in the kernel's backlog.
	slots := make(chan struct{}, maxConns)
	failures := 0 // Accept errors in a row
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		conn, err := ln.AcceptTCP()
		if err != nil {
			<-slots
			if errors.Is(err, net.ErrClosed) {
				return // the one way out of the loop
			}
			// Above all "too many open files" (EMFILE). The client stays
			// in the backlog, so an immediate retry would fail at once,
			// again and again: wait 5 ms, doubling up to 1 s, and log
			// only the first failure of a streak.
			failures++
			if failures == 1 {
				s.log.Printf("accept failed, retrying with back-off: %s", explain(err))
			}
			pause := time.NewTimer(min(5*time.Millisecond<<min(failures-1, 8), time.Second))
			select {
			case <-pause.C:
			case <-ctx.Done():
				pause.Stop()
			}
			continue
		}
		if failures > 0 {
			s.log.Printf("accepting again after %d failed attempts", failures)
			failures = 0
		}

		// The idea of the lesson: each client gets a goroutine of its own.
		// A client beyond its address's share is told so and closed, in
		// its goroutine too, so that it cannot hold up the loop.
		ip, admitted := s.open(conn)
		s.handlers.Add(1)
		go func() {
			defer s.handlers.Done()
			defer func() { <-slots }()
			defer s.close(conn, ip, admitted)
			if admitted {
				s.handle(ctx, conn)
			} else {
				s.turnAway(conn)
			}
		}()
	}
}

// handle talks to one client until it leaves, goes quiet, stops reading,
// breaks the connection, or the server shuts down.
func (s *server) handle(ctx context.Context, conn *net.TCPConn) {
	who := conn.RemoteAddr().String()
	s.log.Printf("client %s connected", who)

	conn.SetWriteDeadline(time.Now().Add(s.idle)) // send moves it when it must
	if err := s.send(conn, []byte(greeting)); err != nil {
		s.hangUp(conn, who, err)
		return
	}

	// Two buffers, each "OK..." then room for one read. The small one,
	// on the goroutine's stack, is what an idle client costs: 1 KB and
	// a byte, so that a message of exactly 1 KB, a common size, fits
	// without filling it. A read that fills it means the client sends
	// more than that at once: the next reads borrow a 16 KiB buffer
	// from a pool, until one does not fill it. While a reply cannot be
	// written nothing more is read, so the memory per client stays
	// bounded.
	small := make([]byte, len("OK...")+1024+1)
	copy(small, "OK...")
	var big *[]byte // borrowed from bigBuffers while the client sends fast
	defer func() {
		if big != nil {
			bigBuffers.Put(big)
		}
	}()

	// The idle deadline is not moved for every message, which would
	// cost a timer update each time. It stays where it is; when it
	// passes, the client is idle only if it has sent nothing since we
	// began waiting. If it has, the deadline moves to -idle-timeout
	// after that, and we read on. The deadline is always set before
	// ctx is checked: if shutdown comes in between, its wake-up
	// deadline replaces this one.
	waiting := time.Now() // when we began to wait for the client
	conn.SetReadDeadline(waiting.Add(s.idle))
	for {
		if ctx.Err() != nil {
			s.goodbye(conn, who, "bye: server shutting down\n", "closed at shutdown")
			return
		}
		buf := small
		if big != nil {
			buf = *big
		}
		n, err := conn.Read(buf[len("OK..."):])
		if n > 0 {
			if err := s.send(conn, buf[:len("OK...")+n]); err != nil {
				s.hangUp(conn, who, err)
				return
			}
			waiting = time.Now()
		}
		switch full := n == len(buf)-len("OK..."); {
		case full && big == nil:
			big = bigBuffers.Get().(*[]byte)
		case !full && big != nil:
			bigBuffers.Put(big)
			big = nil
		}
		switch {
		case err == nil:
			continue
		case ctx.Err() != nil:
			s.goodbye(conn, who, "bye: server shutting down\n", "closed at shutdown")
		case errors.Is(err, io.EOF):
			// The client is done. (Python's recv returns b"" here.)
			// Its FIN has come and everything before it was read, so
			// closing sends FIN, not RST: nothing is left to drain.
			conn.Close()
			s.log.Printf("client %s left", who)
		case isTimeout(err) && time.Since(waiting) < s.idle:
			conn.SetReadDeadline(waiting.Add(s.idle)) // then ctx is checked
			continue
		case isTimeout(err):
			s.goodbye(conn, who, fmt.Sprintf("bye: idle for %v, closing\n", s.idle), "idle, closed")
		default:
			s.hangUp(conn, who, err)
		}
		return
	}
}

// bigBuffers holds the 16 KiB buffers that clients sending more than
// 1 KB at once borrow, so that a busy client reads a long message in
// two reads, not sixteen, and an idle one holds none. 16 KiB with the
// "OK..." in it: a size the Go heap stores without waste.
var bigBuffers = sync.Pool{New: func() any {
	buf := make([]byte, 16<<10)
	copy(buf, "OK...")
	return &buf
}}

// send writes p with a deadline: a client that never reads cannot hold us.
// Like the idle deadline, the write deadline moves only when it passes
// while p has waited less than -idle-timeout.
func (s *server) send(conn *net.TCPConn, p []byte) error {
	start := time.Now()
	for {
		n, err := conn.Write(p)
		if err == nil || !isTimeout(err) || time.Since(start) >= s.idle {
			return err
		}
		p = p[n:]
		if err := conn.SetWriteDeadline(start.Add(s.idle)); err != nil {
			return err
		}
	}
}
