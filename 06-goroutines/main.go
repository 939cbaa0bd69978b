// Lesson 06-goroutines: one goroutine per client, many clients at once.
//
// The server of 05-loop talks to one client at a time: the next one waits
// in the backlog until the current one leaves. Here the accept loop does
// nothing but accept: every connection gets its own goroutine, so a slow
// or silent client holds up nobody else. Goroutines are cheap (a few
// kilobytes each), so a thousand clients are a thousand goroutines.
//
// The protocol is the one of 05-loop and 07-select: a greeting line on
// connect, then "OK..." followed by each chunk the server reads.
//
// Run it:
//
//	go run ./06-goroutines                 # server, on 127.0.0.1:9006
//	go run ./06-goroutines -client         # in a second terminal
//	nc 127.0.0.1 9006                      # or use nc / telnet as the client
package main

import (
	"bufio"
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
	"sync"
	"syscall"
	"time"
)

// main only wires the process: flags come from os.Args, Ctrl+C and
// SIGTERM cancel ctx, and an error becomes one line on stderr.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
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
const greeting = "welcome to 06-goroutines: every message you send comes back after OK...\n"

// run is the whole program. Tests call it directly with their own
// arguments, input and output, and cancel ctx instead of pressing Ctrl+C.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("06-goroutines", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9006", "`host:port` to listen on (port 0 picks a free port), or to connect to with -client")
	client := flags.Bool("client", false, "connect to -addr, send each line of standard input and print the replies")
	maxConns := flags.Int("max-conns", 1000, "how many clients are served at once; more wait in the backlog")
	maxPerIP := flags.Int("max-conns-per-ip", 100, "how many of those may come from one IP address (0: no limit); more are told so and closed")
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
	case *maxPerIP < 0:
		fmt.Fprintln(stderr, "-max-conns-per-ip must not be negative")
	case *idle <= 0:
		fmt.Fprintln(stderr, "-idle-timeout must be positive")
	case *grace < 0:
		fmt.Fprintln(stderr, "-grace must not be negative")
	default:
		if *client {
			return runClient(ctx, *addr, *idle, stdin, stdout)
		}
		srv := &server{
			idle:     *idle,
			grace:    *grace,
			maxPerIP: *maxPerIP,
			stdout:   stdout,
			conns:    make(map[*net.TCPConn]struct{}),
			perIP:    make(map[netip.Addr]int),
		}
		return srv.serve(ctx, *addr, *maxConns)
	}
	flags.Usage()
	return errUsage
}

// server holds what the connection goroutines share.
type server struct {
	idle     time.Duration
	grace    time.Duration
	maxPerIP int // 0: no limit
	stdout   io.Writer
	log      *log.Logger

	// handlers counts the connection goroutines still running, so that
	// shutdown can wait for them.
	handlers sync.WaitGroup

	// conns is every open connection, so that shutdown can reach the
	// ones whose goroutine does not finish in time. perIP counts the
	// clients being served from each IP address.
	mu    sync.Mutex
	conns map[*net.TCPConn]struct{}
	perIP map[netip.Addr]int
}

// serve listens on addr and starts one goroutine per client until ctx is
// cancelled. Then it stops accepting, says goodbye to every client and
// waits for their goroutines, and for the log to be written, at most
// s.grace, before it returns nil.
func (s *server) serve(ctx context.Context, addr string, maxConns int) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer ln.Close()
	// The log goes through a queue (logqueue.go), so that a stdout that
	// nobody reads costs log lines, never service. log.Logger writes each
	// line with one Write, so lines from many goroutines never interleave.
	logs := newLogQueue(s.stdout)
	s.log = log.New(logs, "", 0)
	// Print the real address: with port 0 the kernel chose the port.
	s.log.Printf("listening on %s", ln.Addr())

	// Accept blocks until a client connects. Closing the listener is the
	// way to wake it up, so a stopped context closes it.
	stopAccept := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopAccept()

	s.acceptLoop(ctx, ln.(*net.TCPListener), maxConns)

	// From here on the clients have -grace to leave, and the log has the
	// same time to be written out.
	deadline := time.Now().Add(s.grace)
	s.log.Printf("shutting down")
	s.shutdown(deadline)
	s.log.Printf("stopped")
	logs.close(deadline)
	return nil
}

// tcpAcceptor is what the accept loop needs from a listener.
// *net.TCPListener has it; so can a test's stand-in that fails on purpose.
type tcpAcceptor interface {
	AcceptTCP() (*net.TCPConn, error)
}

// acceptLoop hands each new connection to its own goroutine. It returns
// only when the listener is closed.
func (s *server) acceptLoop(ctx context.Context, ln tcpAcceptor, maxConns int) {
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

		// One address may not take every slot: a client beyond its
		// address's share is told so and closed, in a goroutine of its
		// own so that a client that does not read cannot hold up the loop.
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

// open adds conn to the set of open connections, and reports whether its
// IP address has room for one more client to be served.
func (s *server) open(conn *net.TCPConn) (netip.Addr, bool) {
	// Unmap, so that an IPv4 client of a listener on [::] counts as its
	// IPv4 address.
	ip := conn.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns[conn] = struct{}{}
	if s.maxPerIP > 0 && s.perIP[ip] >= s.maxPerIP {
		return ip, false
	}
	s.perIP[ip]++
	return ip, true
}

// close removes conn from the set of open connections, and gives its
// address's share back if it was served.
func (s *server) close(conn *net.TCPConn, ip netip.Addr, admitted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, conn)
	if admitted {
		if s.perIP[ip]--; s.perIP[ip] == 0 {
			delete(s.perIP, ip)
		}
	}
}

// turnAway tells a client that its address has too many connections
// already, and closes it cleanly. The socket is new, so the line fits in
// its buffer and the write returns at once; the short deadline is there
// anyway, as on every write. Until the client closes too (a second at
// most), the connection keeps its slot of -max-conns.
func (s *server) turnAway(conn *net.TCPConn) {
	conn.SetWriteDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(conn, "bye: too many connections from your address (limit %d), closing\n", s.maxPerIP)
	closeGracefully(conn)
	s.log.Printf("client %s turned away: too many connections from its address (limit %d)", conn.RemoteAddr(), s.maxPerIP)
}

// shutdown waits for the connection goroutines, which ctx has already
// told to say goodbye. Any still running at deadline, the end of the
// grace period (say, one stuck writing to a client that does not read) has its connection
// closed, which ends every blocked Read or Write at once.
func (s *server) shutdown(deadline time.Time) {
	done := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(done)
	}()
	grace := time.NewTimer(time.Until(deadline))
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

// handle talks to one client until it leaves, goes quiet, stops reading,
// breaks the connection, or the server shuts down.
func (s *server) handle(ctx context.Context, conn *net.TCPConn) {
	who := conn.RemoteAddr().String()
	s.log.Printf("client %s connected", who)

	// On shutdown, a read deadline in the past wakes the Read below. The
	// loop then sees ctx is done and says goodbye.
	stopWake := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stopWake()

	if err := s.send(conn, []byte(greeting)); err != nil {
		s.hangUp(conn, who, err)
		return
	}

	// One buffer for the life of the connection, whatever the client
	// sends: "OK..." then room for one read of up to 1024 bytes. A flood
	// is read 1024 bytes at a time, and while the reply cannot be
	// written, nothing more is read: the memory per client stays fixed.
	// The buffer lives on this goroutine's stack. At 1 KB the stack
	// stays at 4 KB; a 4 KB buffer would double it to 8 KB for every
	// idle client, which is why this server reads less at a time than
	// 05 and 07 do.
	buf := make([]byte, len("OK...")+1024)
	copy(buf, "OK...")
	for {
		// The idle deadline starts again before every read. It is set
		// before ctx is checked: if shutdown comes in between, its
		// wake-up deadline replaces this one.
		conn.SetReadDeadline(time.Now().Add(s.idle))
		if ctx.Err() != nil {
			s.goodbye(conn, who, "bye: server shutting down\n", "closed at shutdown")
			return
		}
		n, err := conn.Read(buf[len("OK..."):])
		if n > 0 {
			if err := s.send(conn, buf[:len("OK...")+n]); err != nil {
				s.hangUp(conn, who, err)
				return
			}
		}
		switch {
		case err == nil:
			continue
		case ctx.Err() != nil:
			s.goodbye(conn, who, "bye: server shutting down\n", "closed at shutdown")
		case isTimeout(err):
			s.goodbye(conn, who, fmt.Sprintf("bye: idle for %v, closing\n", s.idle), "idle, closed")
		case errors.Is(err, io.EOF):
			// The client said it has nothing more to send. Python's
			// recv returns b"" here; the article's thread loops on it
			// forever. Here the conversation ends.
			closeGracefully(conn)
			s.log.Printf("client %s left", who)
		default:
			s.hangUp(conn, who, err)
		}
		return
	}
}

// send writes p with a deadline, so a client that never reads its
// replies cannot keep this goroutine (and its buffer) forever.
func (s *server) send(conn *net.TCPConn, p []byte) error {
	if err := conn.SetWriteDeadline(time.Now().Add(s.idle)); err != nil {
		return err
	}
	_, err := conn.Write(p)
	return err
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

// runClient connects to addr and prints the greeting. Then for each line
// of stdin it sends the line and prints the reply. When stdin ends it
// half-closes the connection, prints whatever the server still sends, and
// returns when the server closes.
func runClient(ctx context.Context, addr string, timeout time.Duration, stdin io.Reader, stdout io.Writer) error {
	dialer := net.Dialer{Timeout: 5 * time.Second}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	stopConn := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopConn()

	replies := bufio.NewReader(conn)
	// receive prints one line from the server; it reports io.EOF when the
	// server has closed the connection.
	receive := func() error {
		if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
		line, err := replies.ReadString('\n')
		fmt.Fprint(stdout, line)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read from %s: %w", addr, err)
		}
		return err
	}
	if err := receive(); err != nil {
		return ignoreEOF(err)
	}

	lines := bufio.NewScanner(stdin)
	for lines.Scan() {
		if err := conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(conn, "%s\n", lines.Text()); err != nil {
			return fmt.Errorf("send to %s: %w", addr, err)
		}
		// Wait for the reply before sending the next line, so each
		// answer is printed under the question that caused it.
		if err := receive(); err != nil {
			return ignoreEOF(err)
		}
	}
	if err := lines.Err(); err != nil {
		return fmt.Errorf("read standard input: %w", err)
	}

	// Half-close: the server reads EOF, but we can still read its answer.
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		return fmt.Errorf("close write side: %w", err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := io.Copy(stdout, replies); err != nil {
		return fmt.Errorf("read from %s: %w", addr, err)
	}
	return nil
}

// ignoreEOF turns "the server closed" into success: there is nobody left
// to talk to, and whatever it said has been printed.
func ignoreEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// Winsock reports its own error numbers, which are not the syscall.E*
// values Go defines on Windows, so each cause is checked both ways.
const (
	wsaEADDRINUSE    = syscall.Errno(10048)
	wsaECONNREFUSED  = syscall.Errno(10061)
	wsaECONNRESET    = syscall.Errno(10054)
	wsaECONNABORTED  = syscall.Errno(10053)
	wsaEADDRNOTAVAIL = syscall.Errno(10049)
	wsaEACCES        = syscall.Errno(10013)
	wsaEMFILE        = syscall.Errno(10024)
)

// isReset reports a connection the peer broke off: a reset (RST), a
// write to a peer that has gone (EPIPE), or Windows' aborted connection.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, wsaECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, wsaECONNABORTED)
}

// explain turns an error into the one line a learner sees, pointing to
// the entry in docs/errors.md that says what happened and what to do.
func explain(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, wsaEADDRINUSE):
		return fmt.Sprintf("%v: another program already listens there; stop it or choose another -addr (see docs/errors.md#eaddrinuse)", err)
	case errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, wsaEADDRNOTAVAIL):
		return fmt.Sprintf("%v: that IP address is not one of this machine's (see docs/errors.md#eaddrnotavail)", err)
	case errors.Is(err, syscall.EACCES) || errors.Is(err, wsaEACCES):
		return fmt.Sprintf("%v: ports below 1024 need special permission; use a higher port (see docs/errors.md#eacces)", err)
	case errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, wsaECONNREFUSED):
		return fmt.Sprintf("%v: nothing listens at that address; is the server running? (see docs/errors.md#econnrefused)", err)
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, wsaECONNRESET):
		return fmt.Sprintf("%v: the peer aborted the connection (see docs/errors.md#econnreset)", err)
	case errors.Is(err, syscall.ENFILE):
		// Not this process's limit but the whole system's table of open
		// files: ulimit -n does not help; other programs must close some.
		return fmt.Sprintf("%v: the whole system is out of open files, not just this program; it recovers when programs close some (see docs/errors.md#emfile)", err)
	case errors.Is(err, syscall.EMFILE) || errors.Is(err, wsaEMFILE):
		return fmt.Sprintf("%v: the process ran out of file descriptors; it recovers when some are closed, or raise the limit with ulimit -n (see docs/errors.md#emfile)", err)
	case isTimeout(err):
		return fmt.Sprintf("%v: no answer in time (see docs/errors.md#timeout)", err)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("%v: the host name could not be resolved (see docs/errors.md#no-such-host)", err)
	}
	return err.Error()
}

// isTimeout reports a deadline that passed: a read or write deadline
// (os.ErrDeadlineExceeded) or a dial that gave up. Timeout is the one
// method of net.Error that is not deprecated.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}
