// Lesson 05-loop: serve clients one after another, forever.
//
// Lesson 04 accepted one client and exited. Here Accept sits in a loop:
// the server greets a client, answers everything it sends, notices when
// it leaves, and goes back to Accept for the next one. It serves exactly
// one client at a time; the others wait in the kernel's backlog.
//
// Run it:
//
//	go run ./05-loop                   # server, on 127.0.0.1:9005
//	go run ./05-loop -client           # in a second terminal
//	nc 127.0.0.1 9005                  # or use nc / telnet as the client
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

// greeting is the one line every client gets when its turn comes.
const greeting = "welcome to 05-loop: every message you send comes back after OK...\n"

// config holds the limits that keep one bad client from hurting the rest.
type config struct {
	idle  time.Duration // how long a client may stay silent, or leave replies unread
	turn  time.Duration // how long one client may be served while others wait; 0: no limit
	grace time.Duration // how long shutdown may spend on the client being served
}

// run is the whole program. Tests call it directly with their own
// arguments, input and output, and cancel ctx instead of pressing Ctrl+C.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("05-loop", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9005", "`host:port` to listen on (port 0 picks a free port), or to connect to with -client")
	client := flags.Bool("client", false, "connect to -addr, send each line of standard input and print the replies")
	var cfg config
	flags.DurationVar(&cfg.idle, "idle-timeout", 2*time.Minute, "close a client that sends nothing, or reads nothing, for this long")
	flags.DurationVar(&cfg.turn, "max-turn", time.Minute, "serve one client for at most this long, then close it so the next in the queue gets its turn (0: no limit)")
	flags.DurationVar(&cfg.grace, "grace", 5*time.Second, "on Ctrl+C, how long to spend saying goodbye to the client being served")
	maxConns := flags.Int("max-conns", 1000, "most clients served at once (this server serves one at a time whatever N says; the rest wait in the backlog)")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	var problem string
	switch {
	case flags.NArg() > 0:
		problem = fmt.Sprintf("unexpected argument %q", flags.Arg(0))
	case cfg.idle <= 0:
		problem = "-idle-timeout must be more than 0"
	case cfg.turn < 0:
		problem = "-max-turn must not be negative"
	case cfg.grace < 0:
		problem = "-grace must not be negative"
	case *maxConns < 1:
		problem = "-max-conns must be at least 1"
	}
	if problem != "" {
		fmt.Fprintln(stderr, problem)
		flags.Usage()
		return errUsage
	}

	if *client {
		return runClient(ctx, *addr, cfg.idle, stdin, stdout)
	}
	return serveLogged(ctx, *addr, cfg, stdout)
}

// serveLogged runs serve with its log going through a logQueue, so that
// a stdout nobody reads never stops the server. When serve returns, what
// is still queued is written, but for no longer than the stop's own
// -grace: Ctrl+C still stops the server in time when stdout is stuck.
func serveLogged(ctx context.Context, addr string, cfg config, stdout io.Writer) error {
	log := newLogQueue(stdout)
	stopped := make(chan time.Time, 1)
	stopWatch := context.AfterFunc(ctx, func() { stopped <- time.Now() })
	defer stopWatch()

	err := serve(ctx, addr, cfg, log)

	deadline := time.Now().Add(cfg.grace)
	select {
	case at := <-stopped:
		deadline = at.Add(cfg.grace)
	default:
	}
	// A stdout that keeps up needs microseconds; give it those even with
	// -grace 0, so the last line ("stopped") is never lost to a race.
	if floor := time.Now().Add(lastLogLines); deadline.Before(floor) {
		deadline = floor
	}
	log.close(deadline)
	return err
}

// lastLogLines is the least time the log gets to write its last lines.
const lastLogLines = 100 * time.Millisecond

// serve listens on addr and serves clients one after another until ctx
// is cancelled. Nothing a client does ends this loop: only Ctrl+C, or a
// listener that cannot go on, does.
func serve(ctx context.Context, addr string, cfg config, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer ln.Close()
	// Print the real address: with port 0 the kernel chose the port.
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	return acceptLoop(ctx, ln, cfg, stdout)
}

// acceptLoop serves the clients of ln one after another until ctx is
// cancelled. It is separate from serve only so that a test can hand it
// a listener that fails the way a kernel can.
func acceptLoop(ctx context.Context, ln net.Listener, cfg config, stdout io.Writer) error {
	// Ctrl+C closes the listener, which wakes a blocked Accept. Clients
	// still waiting in the backlog were never accepted: the kernel resets
	// them when the listener closes.
	stopAccept := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopAccept()

	// delay is the pause after a failed Accept; 0 means all is well.
	var delay time.Duration
	var failures int
	for ctx.Err() == nil {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				break
			}
			if !isTemporary(err) {
				return fmt.Errorf("accept: %w", err)
			}
			// Out of file descriptors (or a client that gave up before
			// we took it): the listener is fine, so wait and try again,
			// longer each time, up to a second. One log line when the
			// trouble starts and one when it is over, not one per retry.
			if delay == 0 {
				fmt.Fprintf(stdout, "accept failed, retrying with back-off: %s\n", explain(err))
				delay = 5 * time.Millisecond
			} else {
				delay = min(2*delay, time.Second)
			}
			failures++
			pause(ctx, delay)
			continue
		}
		if failures > 0 {
			fmt.Fprintf(stdout, "accepting again after %d failed attempts\n", failures)
		}
		delay, failures = 0, 0

		// The heart of this lesson: the loop waits here until this
		// client is finished. Nobody else is greeted meanwhile.
		handle(ctx, conn, cfg, stdout)
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}

// pause waits for d, or less if ctx is cancelled first.
func pause(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}

// Besides the errors Read and Write return, a conversation ends for
// these reasons.
var (
	errIdle       = errors.New("client sent nothing for the idle timeout")
	errNotReading = errors.New("client does not read its replies")
	errTurnOver   = errors.New("client was served for -max-turn")
	errStopping   = errors.New("server shutting down")
)

// handle serves one client, logs how the conversation ended and closes
// the connection in the way that ending calls for.
func handle(ctx context.Context, conn net.Conn, cfg config, stdout io.Writer) {
	defer conn.Close()
	who := conn.RemoteAddr().String()
	fmt.Fprintf(stdout, "client %s connected\n", who)

	// Ctrl+C wakes a Read that waits for this client at once, and gives
	// a reply that is being written the grace period to get out.
	stopConn := context.AfterFunc(ctx, func() {
		conn.SetReadDeadline(time.Now())
		conn.SetWriteDeadline(time.Now().Add(cfg.grace))
	})
	defer stopConn()

	err := converse(ctx, conn, cfg)
	switch {
	case errors.Is(err, io.EOF):
		fmt.Fprintf(stdout, "client %s left\n", who)
		closeGracefully(conn, "", time.Second)
	case errors.Is(err, errIdle):
		fmt.Fprintf(stdout, "client %s idle, closed\n", who)
		closeGracefully(conn, fmt.Sprintf("bye: idle for %v, closing\n", cfg.idle), time.Second)
	case errors.Is(err, errTurnOver):
		fmt.Fprintf(stdout, "client %s turn over, closed\n", who)
		closeGracefully(conn, fmt.Sprintf("bye: turn over after %v, closing\n", cfg.turn), time.Second)
	case errors.Is(err, errStopping):
		fmt.Fprintf(stdout, "client %s closed at shutdown\n", who)
		closeGracefully(conn, "bye: server shutting down\n", cfg.grace)
	case errors.Is(err, errNotReading):
		// Its buffers are full of replies it never read: there is no
		// way to say goodbye, so just close.
		fmt.Fprintf(stdout, "client %s stopped reading, closed\n", who)
	case isReset(err):
		fmt.Fprintf(stdout, "client %s reset the connection\n", who)
	default:
		fmt.Fprintf(stdout, "client %s dropped: %s\n", who, explain(err))
	}
}

// converse greets the client, then answers each chunk it sends with
// "OK..." and that chunk, until something ends the conversation. It
// returns why: io.EOF when the client left, one of the errors above, or
// the network error that broke the connection.
func converse(ctx context.Context, conn net.Conn, cfg config) error {
	// Two fixed buffers: whatever the client sends, this connection
	// never holds more than 4096 bytes of it, and one reply.
	buf := make([]byte, 4096)
	reply := make([]byte, 0, len("OK...")+len(buf))
	turn := startTurn(cfg)

	if err := send(ctx, conn, []byte(greeting), cfg, turn); err != nil {
		return err
	}
	for {
		// Each wait for the client gets a fresh deadline. Ctrl+C may
		// come just before this line undoes the stop signal's deadline,
		// so check for it after setting ours.
		if err := conn.SetReadDeadline(turn.deadline()); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return errStopping
		}

		// Read returns whatever has arrived, 1 to 4096 bytes, or an
		// error. When the client has closed its side, it returns 0 and
		// io.EOF, and does so again at once on every later call: a loop
		// that only looked at n would spin here forever.
		n, err := conn.Read(buf)
		if n > 0 {
			reply = append(reply[:0], "OK..."...)
			reply = append(reply, buf[:n]...)
			if err := send(ctx, conn, reply, cfg, turn); err != nil {
				return err
			}
		}
		switch {
		case err == nil:
			continue
		case isTimeout(err) && ctx.Err() != nil:
			return errStopping
		case isTimeout(err) && turn.over():
			return errTurnOver
		case isTimeout(err):
			return errIdle
		default:
			return err // io.EOF when the client left
		}
	}
}

// turn is one client's time with the server. The idle timeout alone does
// not end it: a client that sends a byte every few seconds is never idle
// for long, and would keep everyone behind it waiting forever. So a turn
// also has an end, -max-turn after it began, and no deadline goes past it.
type turn struct {
	idle time.Duration
	end  time.Time // zero: no limit
}

func startTurn(cfg config) turn {
	t := turn{idle: cfg.idle}
	if cfg.turn > 0 {
		t.end = time.Now().Add(cfg.turn)
	}
	return t
}

// deadline is the idle timeout from now, or the end of the turn if that
// comes first.
func (t turn) deadline() time.Time {
	d := time.Now().Add(t.idle)
	if !t.end.IsZero() && t.end.Before(d) {
		return t.end
	}
	return d
}

// over reports whether the turn has ended.
func (t turn) over() bool { return !t.end.IsZero() && !time.Now().Before(t.end) }

// send writes p to the client. Write blocks while the client's buffers
// are full, so a client that never reads would hold the server, and
// everyone queued behind it, forever; the deadline cuts it off instead.
func send(ctx context.Context, conn net.Conn, p []byte, cfg config, turn turn) error {
	if err := conn.SetWriteDeadline(turn.deadline()); err != nil {
		return err
	}
	if ctx.Err() != nil {
		// Stopping: the grace period is the limit, not the idle timeout.
		if err := conn.SetWriteDeadline(time.Now().Add(cfg.grace)); err != nil {
			return err
		}
	}
	if _, err := conn.Write(p); err != nil {
		switch {
		case isTimeout(err) && ctx.Err() == nil && turn.over():
			return errTurnOver
		case isTimeout(err):
			return errNotReading
		}
		return err
	}
	return nil
}

// closeGracefully says last words (if any), then ends the connection
// with a FIN rather than a reset. Closing a socket that still has unread
// input makes the kernel send RST, and the client may then lose the last
// line. So: write it, say we are done writing, read and discard what the
// client still sends until it closes too (or the time is up), then close.
func closeGracefully(conn net.Conn, last string, within time.Duration) {
	conn.SetDeadline(time.Now().Add(within))
	if last != "" {
		if _, err := io.WriteString(conn, last); err != nil {
			return // the client is gone; the deferred Close is enough
		}
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.CloseWrite()
	}
	io.Copy(io.Discard, io.LimitReader(conn, 1<<20))
	conn.Close()
}

// runClient connects to addr, prints the greeting, then for each line of
// stdin sends it and prints the reply. When stdin ends it half-closes the
// connection, prints whatever the server still sends, and returns when
// the server closes.
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

	// readLine waits for one line from the server and prints it. If
	// another client is being served, this is where we wait our turn.
	readLine := func() (open bool, err error) {
		if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return false, err
		}
		line, err := replies.ReadString('\n')
		fmt.Fprint(stdout, line)
		if errors.Is(err, io.EOF) {
			return false, nil // the server closed: nobody left to talk to
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
		// Wait for the reply before sending the next line, so each
		// answer is printed under the question that caused it.
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
	wsaEMFILE        = syscall.Errno(10024)
	wsaEACCES        = syscall.Errno(10013)
	wsaEADDRINUSE    = syscall.Errno(10048)
	wsaEADDRNOTAVAIL = syscall.Errno(10049)
	wsaENOBUFS       = syscall.Errno(10055)
	wsaECONNABORTED  = syscall.Errno(10053)
	wsaECONNRESET    = syscall.Errno(10054)
	wsaECONNREFUSED  = syscall.Errno(10061)
)

// isTemporary reports an Accept error that says nothing about the
// listener itself, so the loop should pause and try again: the process
// or the system is out of descriptors or buffers for now, or a client
// hung up before we took it. (Go already retries that last one itself on
// Unix; Windows may report it as a reset.)
func isTemporary(err error) bool {
	for _, errno := range []syscall.Errno{
		syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED,
		wsaEMFILE, wsaENOBUFS, wsaECONNABORTED, wsaECONNRESET,
	} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// isReset reports a client that aborted the connection (RST) instead of
// closing it. Writing to a connection the client has reset fails with
// EPIPE, "broken pipe", which means the same thing here.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, wsaECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, wsaECONNABORTED) ||
		errors.Is(err, syscall.EPIPE)
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
	case errors.Is(err, syscall.EPIPE):
		return fmt.Sprintf("%v: the peer is gone and cannot receive any more (see docs/errors.md#epipe)", err)
	case errors.Is(err, syscall.ENFILE):
		// Not this process's limit but the whole system's table of open
		// files: ulimit -n does not help; other programs must close some.
		return fmt.Sprintf("%v: the whole system is out of open files, not just this program; it recovers when programs close some (see docs/errors.md#emfile)", err)
	case errors.Is(err, syscall.EMFILE) || errors.Is(err, wsaEMFILE):
		return fmt.Sprintf("%v: out of file descriptors; close some, or raise the limit (ulimit -n) (see docs/errors.md#emfile)", err)
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
