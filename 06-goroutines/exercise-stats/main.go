// Exercise 06-goroutines/exercise-stats: the monitoring daemon the first
// article set out to build. It is the server of lesson 06, one goroutine
// per client, answering each line with "OK..." and the line, plus one
// command: the line "stats" is answered with live counters, one
// "name value" per line, then "END".
//
// This file is the part you do not write: flags, listening, the accept
// loop and shutdown, as in the lesson (the error messages are in
// errors.go). Your part is in starter.go: the counters, the report,
// and the client's loop that keeps them up to date.
//
// Run it:
//
//	go run ./06-goroutines/exercise-stats   # server, on 127.0.0.1:9006
//	nc 127.0.0.1 9006                       # then type: stats
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// main only wires the process: flags come from os.Args, Ctrl+C and
// SIGTERM cancel ctx, and an error becomes one line on stderr.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		// -h printed the usage; asking for help is not a failure.
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "error:", explain(err))
		os.Exit(1)
	}
}

// errUsage marks a bad command line; the flag package already said why.
var errUsage = errors.New("bad command line")

// greeting is the first line every client receives.
const greeting = "welcome to exercise-stats: every line comes back after OK..., and the line stats answers live counters\n"

// run is the whole program. Tests call it directly with their own
// arguments and output, and cancel ctx instead of pressing Ctrl+C.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("exercise-stats", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9006", "`host:port` to listen on (port 0 picks a free port)")
	maxConns := flags.Int("max-conns", 1000, "how many clients are served at once; more wait in the backlog")
	idle := flags.Duration("idle-timeout", 2*time.Minute, "close a client that sends nothing (or reads nothing) for this long")
	grace := flags.Duration("grace", 5*time.Second, "on shutdown, how long to wait for clients to finish before closing them")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	switch {
	case flags.NArg() > 0:
		fmt.Fprintf(stderr, "unexpected argument %q\n", flags.Arg(0))
	case *maxConns < 1:
		fmt.Fprintln(stderr, "-max-conns must be at least 1")
	case *idle <= 0:
		fmt.Fprintln(stderr, "-idle-timeout must be positive")
	case *grace < 0:
		fmt.Fprintln(stderr, "-grace must not be negative")
	default:
		return newServer(stdout, *idle, *grace).serve(ctx, *addr, *maxConns)
	}
	flags.Usage()
	return errUsage
}

// server holds what the connection goroutines share.
type server struct {
	idle  time.Duration
	grace time.Duration
	log   *log.Logger

	// count holds the live counters that the stats command reports.
	// Every client goroutine updates them at the same time.
	count counters

	// now tells the time, and started is when serve began: uptime is
	// the difference. Tests replace now with a clock they move by hand.
	now     func() time.Time
	started time.Time

	// handlers counts the connection goroutines still running, so that
	// shutdown can wait for them.
	handlers sync.WaitGroup

	// conns is every open connection, so that shutdown can reach the
	// ones whose goroutine does not finish in time.
	mu    sync.Mutex
	conns map[*net.TCPConn]struct{}
}

// newServer returns a server that logs to stdout.
func newServer(stdout io.Writer, idle, grace time.Duration) *server {
	return &server{
		idle:  idle,
		grace: grace,
		// log.Logger writes each line with one Write under a mutex,
		// so lines from many goroutines never interleave.
		log:   log.New(stdout, "", 0),
		now:   time.Now,
		conns: make(map[*net.TCPConn]struct{}),
	}
}

// uptime is how long the server has been serving.
func (s *server) uptime() time.Duration {
	return s.now().Sub(s.started)
}

// serve listens on addr and starts one goroutine per client until ctx is
// cancelled. Then it stops accepting, says goodbye to every client and
// waits for their goroutines, at most s.grace, before it returns nil.
func (s *server) serve(ctx context.Context, addr string, maxConns int) error {
	if err := checkHostPort(addr); err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer ln.Close()
	s.started = s.now()
	// Print the real address: with port 0 the kernel chose the port.
	s.log.Printf("listening on %s", ln.Addr())

	// Accept blocks until a client connects. Closing the listener is the
	// way to wake it up, so a stopped context closes it.
	stopAccept := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopAccept()

	s.acceptLoop(ctx, ln.(*net.TCPListener), maxConns)

	s.log.Printf("shutting down")
	s.shutdown()
	s.log.Printf("stopped")
	return nil
}

// acceptLoop hands each new connection to its own goroutine. It returns
// only when the listener is closed.
func (s *server) acceptLoop(ctx context.Context, ln *net.TCPListener, maxConns int) {
	// slots is a semaphore: a goroutine takes a slot before Accept and
	// gives it back when its client leaves. With every slot taken the
	// loop does not call Accept, so new clients wait in the kernel's
	// backlog until someone leaves. netutil.LimitListener does exactly
	// this; it is written out here because its wrapper hides the
	// *net.TCPConn whose CloseWrite the clean goodbye needs.
	slots := make(chan struct{}, maxConns)

	// failures counts Accept errors in a row, for the back-off below.
	failures := 0
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		conn, err := ln.AcceptTCP()
		if err != nil {
			<-slots
			// Closing the listener is the one way out of the loop.
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Any other failure is about one connection or a passing
			// shortage, above all "too many open files" (EMFILE): the
			// process has used all its descriptors. The waiting client
			// stays in the backlog, so trying again at once fails again
			// at once, and the loop would spin. So wait a little longer
			// after each failure, up to a second, and log only the
			// first one of a streak.
			failures++
			if failures == 1 {
				s.log.Printf("accept failed, retrying with back-off: %s", explain(err))
			}
			delay := min(5*time.Millisecond<<min(failures-1, 8), time.Second)
			pause := time.NewTimer(delay)
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

		s.track(conn, true)
		s.handlers.Add(1)
		go func() {
			defer s.handlers.Done()
			defer func() { <-slots }()
			defer s.track(conn, false)
			s.handle(ctx, conn)
		}()
	}
}

// track adds conn to, or removes it from, the set of open connections.
func (s *server) track(conn *net.TCPConn, open bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if open {
		s.conns[conn] = struct{}{}
	} else {
		delete(s.conns, conn)
	}
}

// shutdown waits for the connection goroutines, which ctx has already
// told to say goodbye. Any still running after the grace period (say, one
// stuck writing to a client that does not read) has its connection
// closed, which ends every blocked Read or Write at once.
func (s *server) shutdown() {
	done := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(done)
	}()
	grace := time.NewTimer(s.grace)
	defer grace.Stop()
	select {
	case <-done:
		return
	case <-grace.C:
	}
	s.mu.Lock()
	s.log.Printf("grace period over, closing %d connections", len(s.conns))
	for conn := range s.conns {
		conn.Close()
	}
	s.mu.Unlock()
	<-done
}

// goodbye tells the client why the server closes, then closes cleanly.
func (s *server) goodbye(conn *net.TCPConn, who, line, logLine string) {
	s.send(conn, []byte(line))
	closeGracefully(conn)
	s.log.Printf("client %s %s", who, logLine)
}

// hangUp closes a connection that failed and logs why.
func (s *server) hangUp(conn *net.TCPConn, who string, err error) {
	switch {
	case isReset(err):
		conn.Close()
		s.log.Printf("client %s reset the connection", who)
	case errors.Is(err, net.ErrClosed):
		// shutdown closed the connection when the grace period ended.
		s.log.Printf("client %s cut off at shutdown", who)
	case isTimeout(err):
		// The write deadline passed: the client does not read.
		closeGracefully(conn)
		s.log.Printf("client %s stopped reading, closed", who)
	default:
		conn.Close()
		s.log.Printf("client %s: %v", who, err)
	}
}

// closeGracefully ends a connection with a FIN rather than a reset.
// Closing a socket that still has unread input makes the kernel send RST,
// and the peer may then lose the replies we already wrote. So: say we are
// done writing, read and discard what the client still sends until it
// closes too (at most 64 KB, or for a second), then close.
func closeGracefully(conn *net.TCPConn) {
	conn.CloseWrite()
	conn.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, io.LimitReader(conn, 64<<10))
	conn.Close()
}
