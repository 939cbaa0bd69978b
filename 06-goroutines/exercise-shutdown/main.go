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
	"net/netip"
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
	maxConns := flags.Int("max-conns", 1000, "how many clients are served at once; more wait in the backlog")
	maxPerIP := flags.Int("max-conns-per-ip", 100, "how many of those may come from one IP address; more are told so and closed (0: no limit)")
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
	case *maxConns < 1:
		fmt.Fprintln(stderr, "-max-conns must be at least 1")
	case *maxPerIP < 0:
		fmt.Fprintln(stderr, "-max-conns-per-ip must not be negative")
	default:
		hard, cancelJobs := context.WithCancel(context.Background())
		defer cancelJobs()
		s := &server{
			log:        log.New(stdout, "", 0),
			grace:      *grace,
			jobs:       hard,
			cancelJobs: cancelJobs,
			maxConns:   *maxConns,
			perIP:      &addrCounts{limit: *maxPerIP, n: make(map[netip.Addr]int)},
			conns:      make(map[*net.TCPConn]struct{}),
		}
		// serve (your part) listens; a port without a host is
		// caught here first, with a hint.
		if err := checkHostPort(*addr); err != nil {
			return fmt.Errorf("listen on %s: %w", *addr, err)
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

	// At most maxConns clients are served at once, and at most
	// perIP.limit of them from one IP address.
	maxConns int
	perIP    *addrCounts

	// conns is every open connection, so that cutOff can reach them.
	mu    sync.Mutex
	conns map[*net.TCPConn]struct{}
}

// tcpAcceptor is what the accept loop needs from a listener.
// *net.TCPListener has it; so can a test's stand-in that fails on purpose.
type tcpAcceptor interface {
	AcceptTCP() (*net.TCPConn, error)
}

// acceptLoop starts one goroutine per client, counted in s.handlers. It
// returns when the listener is closed. At most s.maxConns clients are
// served at once: the rest wait in the kernel's backlog. At most
// s.perIP.limit come from one IP address: the rest are told so and
// closed.
func (s *server) acceptLoop(ctx context.Context, ln tcpAcceptor) {
	// slots is a semaphore, as in lesson 06: a slot is taken before
	// Accept and given back when the client leaves.
	slots := make(chan struct{}, s.maxConns)
	failures := 0 // Accept errors in a row, for the back-off below
	for {
		// Take a slot; wait for one only while the room is full, and
		// stop waiting at shutdown. (With a slot free, Accept returns
		// once shutdown closes the listener, so nothing is accepted
		// after "shutting down".)
		select {
		case slots <- struct{}{}:
		default:
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		conn, err := ln.AcceptTCP()
		if err != nil {
			<-slots
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A passing failure, above all "too many open files"
			// (EMFILE). The client stays in the backlog, so an
			// immediate retry fails again and the loop would spin:
			// wait longer after each failure, up to a second, and log
			// only the first of a streak, as lesson 06 does.
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
		s.track(conn, true)
		s.handlers.Add(1)
		if !s.perIP.add(conn) {
			// Over the cap for its address: it takes no slot, and is
			// told why in a goroutine of its own, so that a client that
			// does not read cannot hold up the loop.
			<-slots
			s.log.Printf("client %s refused: %d connections from its address already", conn.RemoteAddr(), s.perIP.limit)
			go func() {
				defer s.handlers.Done()
				defer s.track(conn, false)
				refuse(conn, s.perIP.limit)
			}()
			continue
		}
		go func() {
			defer s.handlers.Done()
			defer func() { <-slots }()
			defer s.perIP.remove(conn)
			defer s.track(conn, false)
			s.handle(ctx, conn)
		}()
	}
}

// addrCounts counts the open connections from each IP address, for
// -max-conns-per-ip, so that one address cannot take every slot.
type addrCounts struct {
	limit int // 0: no limit
	mu    sync.Mutex
	n     map[netip.Addr]int
}

// add counts conn in, unless its address has limit connections already.
func (a *addrCounts) add(conn *net.TCPConn) bool {
	if a.limit == 0 {
		return true
	}
	ip := ipOf(conn)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n[ip] >= a.limit {
		return false
	}
	a.n[ip]++
	return true
}

// remove counts conn out.
func (a *addrCounts) remove(conn *net.TCPConn) {
	if a.limit == 0 {
		return
	}
	ip := ipOf(conn)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n[ip]--; a.n[ip] <= 0 {
		delete(a.n, ip)
	}
}

// ipOf is the IP address conn comes from; an IPv4 client of an IPv6
// listener counts as its IPv4 address.
func ipOf(conn *net.TCPConn) netip.Addr {
	if tcp, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		return tcp.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// refuse tells a client over the per-address cap why, with a short
// write deadline, and closes with FIN.
func refuse(conn *net.TCPConn, limit int) {
	conn.SetWriteDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(conn, "bye: too many connections from your address (limit %d), closing\n", limit)
	closeGracefully(conn)
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
