// Exercise 06-goroutines/exercise-shutdown: stop without losing replies.
//
// A job server: each client sends lines such as "work 300ms", and the
// server works that long, then answers "done 300ms". As given in
// starter.go, Ctrl+C cuts every connection at once: a client whose job
// is half done never gets its reply. Your part is a clean shutdown.
//
// This file is the part you do not write: flags, the accept loop, the
// jobs, and cutOff, the last resort that ends everything at once.
//
// Run it:
//
//	go run ./06-goroutines/exercise-shutdown   # server, on 127.0.0.1:9006
//	nc 127.0.0.1 9006                          # type: work 5s, then Ctrl+C the server
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
	"strings"
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
const greeting = "welcome to exercise-shutdown: send work 300ms, get done 300ms when it is done\n"

// longestJob is the most work one line may ask for.
const longestJob = time.Minute

// run is the whole program. Tests call it directly with their own
// arguments and output, and cancel ctx instead of pressing Ctrl+C.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("exercise-shutdown", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9006", "`host:port` to listen on (port 0 picks a free port)")
	grace := flags.Duration("grace", 5*time.Second, "on shutdown, how long to let jobs finish before cutting every client off")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	switch {
	case flags.NArg() > 0:
		fmt.Fprintf(stderr, "unexpected argument %q\n", flags.Arg(0))
	case *grace < 0:
		fmt.Fprintln(stderr, "-grace must not be negative")
	default:
		hard, cancelJobs := context.WithCancel(context.Background())
		defer cancelJobs()
		s := &server{
			log:        log.New(stdout, "", 0),
			grace:      *grace,
			jobs:       hard,
			cancelJobs: cancelJobs,
			conns:      make(map[*net.TCPConn]struct{}),
		}
		return s.serve(ctx, *addr)
	}
	flags.Usage()
	return errUsage
}

// server holds what the connection goroutines share.
type server struct {
	log   *log.Logger
	grace time.Duration

	// handlers counts the connection goroutines still running.
	handlers sync.WaitGroup

	// jobs is cancelled by cutOff: every job still working stops.
	jobs       context.Context
	cancelJobs context.CancelFunc

	// conns is every open connection, so that cutOff can reach them.
	mu    sync.Mutex
	conns map[*net.TCPConn]struct{}
}

// acceptLoop starts one goroutine per client, counted in s.handlers. It
// returns when the listener is closed.
func (s *server) acceptLoop(ctx context.Context, ln *net.TCPListener) {
	for {
		conn, err := ln.AcceptTCP()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// A failure about one connection, or a passing shortage of
			// file descriptors: lesson 06 shows how to back off. Here a
			// short pause keeps the loop from spinning.
			s.log.Printf("accept failed: %v", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s.track(conn, true)
		s.handlers.Add(1)
		go func() {
			defer s.handlers.Done()
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

// cutOff is the last resort: it stops every job and closes every
// connection at once, which ends any blocked Read or Write. Whatever was
// not yet written is lost.
func (s *server) cutOff() {
	s.cancelJobs()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log.Printf("cutting off %d connections", len(s.conns))
	for conn := range s.conns {
		conn.Close()
	}
}

// work does what one line asks and returns the reply. "work 300ms"
// works for 300 ms, unless cutOff stops it first: then the reply is "".
func (s *server) work(who, line string) string {
	arg, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "work ")
	d, err := time.ParseDuration(arg)
	if !ok || err != nil || d < 0 || d > longestJob {
		return fmt.Sprintf("error: say work and a duration up to %v, such as work 300ms\n", longestJob)
	}
	s.log.Printf("client %s: working %v", who, d)
	// A timer stands in for real work: a query, a computation, a file.
	done := time.NewTimer(d)
	defer done.Stop()
	select {
	case <-done.C:
		s.log.Printf("client %s: done %v", who, d)
		return fmt.Sprintf("done %v\n", d)
	case <-s.jobs.Done():
		s.log.Printf("client %s: job cut off", who)
		return ""
	}
}

// closeGracefully ends a connection with a FIN rather than a reset.
// Closing a socket that still has unread input makes the kernel send
// RST, and the client may then lose the last lines we wrote. So: say we
// are done writing, read and discard what the client still sends until
// it closes too (at most 64 KB, or for a second), then close.
func closeGracefully(conn *net.TCPConn) {
	conn.CloseWrite()
	conn.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, io.LimitReader(conn, 64<<10))
	conn.Close()
}

// Winsock reports its own error numbers, which are not the syscall.E*
// values Go defines on Windows, so each cause is checked both ways.
const (
	wsaEADDRINUSE    = syscall.Errno(10048)
	wsaEADDRNOTAVAIL = syscall.Errno(10049)
	wsaEACCES        = syscall.Errno(10013)
)

// explain turns an error into the one line a learner sees, pointing to
// the entry in docs/errors.md that says what happened and what to do.
func explain(err error) string {
	switch {
	case errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, wsaEADDRINUSE):
		return fmt.Sprintf("%v: another program already listens there; stop it or choose another -addr (see docs/errors.md#eaddrinuse)", err)
	case errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, wsaEADDRNOTAVAIL):
		return fmt.Sprintf("%v: that IP address is not one of this machine's (see docs/errors.md#eaddrnotavail)", err)
	case errors.Is(err, syscall.EACCES) || errors.Is(err, wsaEACCES):
		return fmt.Sprintf("%v: ports below 1024 need special permission; use a higher port (see docs/errors.md#eacces)", err)
	}
	return err.Error()
}
