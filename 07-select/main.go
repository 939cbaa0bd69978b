// Lesson 07-select: many clients with one goroutine and a readiness loop.
//
// Lesson 06 gave every client its own goroutine, and Go's runtime did
// the waiting for all of them. This lesson does that waiting by hand, the
// way Python's selectors module, nginx and Node.js do: every socket is
// non-blocking, and one loop asks the kernel "which of these sockets can
// I read or write without blocking?" (poll, epoll or kqueue), then does
// exactly that much work and asks again.
//
// The server speaks the protocol of 05 and 06: a greeting line, then
// "OK..." followed by each chunk it reads. With -client it is the
// interactive client; with -client -conns N -messages M it is a small
// load generator that opens N connections without blocking.
//
// Run it:
//
//	go run ./07-select                         # server, on 127.0.0.1:9007
//	go run ./07-select -client                 # type lines, see replies
//	go run ./07-select -client -conns 50 -messages 1000
//	go run ./07-select -busy                   # the wrong first attempt
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
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

// config is the server's command line.
type config struct {
	addr        string
	maxConns    int
	maxPerIP    int
	idleTimeout time.Duration
	grace       time.Duration
	poller      string
	busy        bool
}

// loadConfig is the load generator's command line.
type loadConfig struct {
	addr     string
	conns    int
	messages int
	size     int
	timeout  time.Duration
	poller   string
}

// run is the whole program. Tests call it directly with their own
// arguments, input and output, and cancel ctx instead of pressing Ctrl+C.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("07-select", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var cfg config
	flags.StringVar(&cfg.addr, "addr", "127.0.0.1:9007", "`host:port` to listen on (port 0 picks a free port), or to connect to with -client")
	client := flags.Bool("client", false, "connect to -addr and send each line of standard input")
	conns := flags.Int("conns", 0, "with -client: open `N` connections at once and measure (load generator)")
	messages := flags.Int("messages", 100, "with -conns: request/reply round trips per connection")
	size := flags.Int("size", 64, "with -conns: bytes per message")
	flags.IntVar(&cfg.maxConns, "max-conns", 1000, "serve at most `N` clients at once; the rest wait in the backlog")
	flags.IntVar(&cfg.maxPerIP, "max-conns-per-ip", 100, "serve at most `N` clients from one IP address at once, so that one address cannot take every slot; the rest are told so and closed (0: no limit)")
	flags.DurationVar(&cfg.idleTimeout, "idle-timeout", 2*time.Minute, "close a client that sends nothing (and reads nothing) for this long")
	flags.DurationVar(&cfg.grace, "grace", 5*time.Second, "on shutdown, how long clients get to take their last replies")
	flags.StringVar(&cfg.poller, "poller", defaultPoller(), "readiness API: "+strings.Join(pollerNames(), ", "))
	flags.BoolVar(&cfg.busy, "busy", false, "the wrong first attempt: never wait, try every socket over and over")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	problem := ""
	switch {
	case flags.NArg() > 0:
		problem = fmt.Sprintf("unexpected argument %q", flags.Arg(0))
	case len(pollerNames()) > 0 && !slices.Contains(pollerNames(), cfg.poller):
		problem = fmt.Sprintf("-poller %q is not available here; choose one of %s", cfg.poller, strings.Join(pollerNames(), ", "))
	case cfg.maxConns < 1:
		problem = "-max-conns must be at least 1"
	case cfg.maxPerIP < 0:
		problem = "-max-conns-per-ip must not be negative (0 means no limit)"
	case cfg.idleTimeout <= 0 || cfg.grace < 0:
		problem = "-idle-timeout must be positive and -grace not negative"
	case *conns < 0 || *messages < 1 || *size < 1:
		problem = "-conns must not be negative, -messages and -size must be at least 1"
	case *conns > 0 && !*client:
		problem = "-conns makes sense only with -client"
	}
	if problem != "" {
		fmt.Fprintln(stderr, problem)
		flags.Usage()
		return errUsage
	}

	switch {
	case *client && *conns > 0:
		return loadgen(ctx, loadConfig{
			addr: cfg.addr, conns: *conns, messages: *messages, size: *size,
			timeout: cfg.idleTimeout, poller: cfg.poller,
		}, stdout)
	case *client:
		return runClient(ctx, cfg.addr, cfg.idleTimeout, stdin, stdout)
	}
	return serve(ctx, cfg, stdout)
}

// runClient is the interactive client of lessons 05 and 06: it prints the
// greeting, then sends each line of stdin and prints the reply line. When
// stdin ends it half-closes the connection, prints whatever the server
// still sends, and returns when the server closes. It uses the net
// package: one connection needs no readiness loop.
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
	// Each reply is one line; the greeting is the first.
	readLine := func() (bool, error) {
		if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return false, err
		}
		line, err := replies.ReadString('\n')
		fmt.Fprint(stdout, line)
		if errors.Is(err, io.EOF) {
			return false, nil // the server closed: nothing more to say
		}
		if err != nil {
			return false, fmt.Errorf("read from %s: %w", addr, err)
		}
		return true, nil
	}
	if open, err := readLine(); !open {
		return err
	}
	lines := bufio.NewScanner(stdin)
	for lines.Scan() {
		if err := conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(conn, "%s\n", lines.Text()); err != nil {
			return fmt.Errorf("send to %s: %w", addr, err)
		}
		if open, err := readLine(); !open {
			return err
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

// Winsock reports its own error numbers, which are not the syscall.E*
// values Go defines on Windows, so each cause is checked both ways.
const (
	wsaEADDRINUSE    = syscall.Errno(10048)
	wsaECONNREFUSED  = syscall.Errno(10061)
	wsaECONNRESET    = syscall.Errno(10054)
	wsaEADDRNOTAVAIL = syscall.Errno(10049)
	wsaEACCES        = syscall.Errno(10013)
	wsaEMFILE        = syscall.Errno(10024)
)

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
		return fmt.Sprintf("%v: out of file descriptors; raise the limit (ulimit -n) or use fewer connections (see docs/errors.md#emfile)", err)
	case isTimeout(err):
		return fmt.Sprintf("%v: no answer in time (see docs/errors.md#timeout)", err)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("%v: the host name could not be resolved (see docs/errors.md#no-such-host)", err)
	}
	return err.Error()
}

// errNoProgress is the load generator's timeout: nothing happened on any
// connection for -idle-timeout.
var errNoProgress = errors.New("no progress")

// isTimeout reports a deadline that passed: a read or write deadline
// (os.ErrDeadlineExceeded), a dial that gave up, or a load run that
// stalled. Timeout is the one method of net.Error that is not deprecated.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, errNoProgress) ||
		(errors.As(err, &netErr) && netErr.Timeout())
}
