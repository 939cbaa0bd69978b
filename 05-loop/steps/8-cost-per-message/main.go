// Step 8: pay only for what is used. Go's net turns TCP keep-alive on
// for every accepted connection, four setsockopt calls each, though the
// idle timeout already finds a client that vanished: the server listens
// with keep-alive off. Every message moved two deadlines, two timer
// updates in Go's runtime: now each is set once, and moved only when it
// passes too early (the client has spoken since, or the reply that waits
// has waited less than -idle-timeout). And a 16 KiB message took four
// reads and four replies: now Read takes up to 16 KiB, into a buffer that
// holds the "OK..." too. The limits are unchanged.
//
// This is the server of the finished lesson, in one file; ../../main.go
// adds the -client, an explanation for each error, and a few more
// causes for a conversation's end.
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
	"syscall"
	"time"
)

const greeting = "welcome to 05-loop: every message you send comes back after OK...\n"

// config holds the limits that keep one bad client from hurting the rest.
type config struct {
	idle  time.Duration // how long a client may stay silent, or leave replies unread
	turn  time.Duration // how long one client may be served while others wait; 0: no limit
	grace time.Duration // how long shutdown may spend on the client being served
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9005", "host:port to listen on")
	var cfg config
	flag.DurationVar(&cfg.idle, "idle-timeout", 2*time.Minute, "close a client that sends nothing, or reads nothing, for this long")
	flag.DurationVar(&cfg.turn, "max-turn", time.Minute, "serve one client for at most this long, then close it so the next in the queue gets its turn (0: no limit)")
	flag.DurationVar(&cfg.grace, "grace", 5*time.Second, "on Ctrl+C, how long to spend saying goodbye to the client being served")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Go's net turns TCP keep-alive on for every accepted connection,
	// four setsockopt calls each, to find a peer that vanished without
	// a word. -idle-timeout finds it too: a negative KeepAlive, none.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(ctx, "tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", ln.Addr())
	queue := newLogQueue(os.Stdout)
	err = acceptLoop(ctx, ln, cfg, queue)
	// Write what is still queued, but wait no longer than -grace.
	queue.close(time.Now().Add(cfg.grace))
	if err != nil {
		log.Fatal(err)
	}
}

// acceptLoop serves the clients of ln one after another until ctx is
// cancelled; it logs to stdout (tests pass their own writer).
func acceptLoop(ctx context.Context, ln net.Listener, cfg config, stdout io.Writer) error {
	// Ctrl+C closes the listener, which wakes a blocked Accept.
	stopAccept := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopAccept()

	var delay time.Duration // the pause after a failed Accept; 0: all is well
	var failures int
	for ctx.Err() == nil {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				break
			}
			// Out of file descriptors, say: the listener is fine, so
			// wait and try again, longer each time, up to a second. One
			// log line when the trouble starts and one when it is over.
			if delay == 0 {
				fmt.Fprintf(stdout, "accept failed, retrying with back-off: %v\n", err)
				delay = 5 * time.Millisecond
			} else {
				delay = min(2*delay, time.Second)
			}
			failures++
			select { // wait, unless Ctrl+C comes first
			case <-ctx.Done():
			case <-time.After(delay):
			}
			continue
		}
		if failures > 0 {
			fmt.Fprintf(stdout, "accepting again after %d failed attempts\n", failures)
		}
		delay, failures = 0, 0
		handle(ctx, conn, cfg, stdout)
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}

// Why a conversation ends, besides the errors of Read and Write:
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
		// Its buffers are full of unread replies: no room for a goodbye.
		fmt.Fprintf(stdout, "client %s stopped reading, closed\n", who)
	default:
		fmt.Fprintf(stdout, "client %s dropped: %v\n", who, err)
	}
}

// converse greets the client, then answers each chunk it sends with
// "OK..." and that chunk, until something ends the conversation. It
// returns why: io.EOF when the client left, one of the errors above, or
// the network error that broke the connection.
func converse(ctx context.Context, conn net.Conn, cfg config) error {
	// One buffer for the whole conversation: "OK..." and room for one
	// read. Whatever the client sends, the server holds at most 16 KiB
	// of it; a 16 KiB message is one read and one reply, where 4 KiB
	// would take four of each.
	buf := make([]byte, len("OK...")+16<<10)
	copy(buf, "OK...")
	turn := clientTurn{idle: cfg.idle}
	if cfg.turn > 0 {
		turn.end = time.Now().Add(cfg.turn)
	}

	// The deadlines are not moved for every message, which would cost
	// two timer updates each time: they are set once, here, and moved
	// only when they pass early (below, and in send).
	waiting := time.Now() // when we began to wait for the client
	if err := conn.SetDeadline(turn.deadline(waiting)); err != nil {
		return err
	}
	if err := send(ctx, conn, []byte(greeting), cfg, turn); err != nil {
		return err
	}
	for {
		// Ctrl+C wakes Read with a deadline in the past, which ours
		// would undo if set just after it: so check for it after ours.
		if ctx.Err() != nil {
			return errStopping
		}

		// Read returns whatever has arrived, 1 to 16384 bytes, or an
		// error. When the client has closed its side, it returns 0 and
		// io.EOF, and does so again at once on every later call: a loop
		// that only looked at n would spin here forever.
		n, err := conn.Read(buf[len("OK..."):])
		if n > 0 {
			if err := send(ctx, conn, buf[:len("OK...")+n], cfg, turn); err != nil {
				return err
			}
			waiting = time.Now()
		}
		switch {
		case err == nil:
			continue
		case isTimeout(err) && ctx.Err() != nil:
			return errStopping
		case isTimeout(err) && turn.over():
			return errTurnOver
		case isTimeout(err) && time.Since(waiting) < cfg.idle:
			// Not idle: the client has spoken since the deadline was
			// set. Move it to -idle-timeout after that, and read on.
			if err := conn.SetReadDeadline(turn.deadline(waiting)); err != nil {
				return err
			}
		case isTimeout(err):
			return errIdle
		default:
			return err // io.EOF when the client left
		}
	}
}

// clientTurn is one client's time with the server. A client that sends a
// byte every few seconds is never idle, so a turn also ends -max-turn
// after it began (zero end: no limit); no deadline is set past that end.
type clientTurn struct {
	idle time.Duration
	end  time.Time
}

// deadline is -idle-timeout after from, or the end of the turn if sooner.
func (t clientTurn) deadline(from time.Time) time.Time {
	if d := from.Add(t.idle); t.end.IsZero() || d.Before(t.end) {
		return d
	}
	return t.end
}

// over reports whether the turn has ended.
func (t clientTurn) over() bool { return !t.end.IsZero() && !time.Now().Before(t.end) }

// send writes p to the client. Write blocks while the client's buffers
// are full, so a client that never reads would hold the server, and
// everyone queued behind it, forever; the deadline cuts it off. Set for
// an earlier reply, it may pass before p has waited -idle-timeout: then
// it moves to -idle-timeout after p began to wait, and Write goes on.
func send(ctx context.Context, conn net.Conn, p []byte, cfg config, turn clientTurn) error {
	for start := time.Now(); ; {
		n, err := conn.Write(p)
		if err == nil || !isTimeout(err) {
			return err
		}
		p = p[n:]
		switch waited := time.Since(start); {
		case ctx.Err() != nil && waited >= cfg.grace:
			return errNotReading // stopping, and p had its -grace
		case ctx.Err() == nil && turn.over():
			return errTurnOver
		case waited >= cfg.idle:
			return errNotReading
		}
		err = conn.SetWriteDeadline(turn.deadline(start))
		if err == nil && ctx.Err() != nil { // checked after ours, as in converse
			err = conn.SetWriteDeadline(start.Add(cfg.grace))
		}
		if err != nil {
			return err
		}
	}
}

// closeGracefully says last words (if any), then ends the connection
// with a FIN, not a reset: closing a socket with unread input makes the
// kernel send RST, and the client may lose the last line. So: write it,
// CloseWrite, discard what the client still sends until it closes too
// (or the time is up), then close.
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

// isTimeout reports a deadline that passed.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
