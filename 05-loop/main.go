// Lesson 05-loop: serve clients one after another, forever.
//
// Lesson 04 accepted one client and exited. Here Accept sits in a loop:
// the server greets a client, answers everything it sends, notices when
// it leaves, and goes back to Accept for the next one. It serves exactly
// one client at a time; the others wait in the kernel's backlog.
//
// This file is the server. Run it with `go run ./05-loop`; cli.go has
// main and the flags, client.go the -client, closing.go the clean close,
// errors.go the error messages, and logqueue.go the log.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// greeting is the one line every client gets when its turn comes.
const greeting = "welcome to 05-loop: every message you send comes back after OK...\n"

// serve listens on addr and serves clients one after another until ctx
// is cancelled: nothing a client does can end it.
func serve(ctx context.Context, addr string, cfg config, stdout io.Writer) error {
	// Go's net turns TCP keep-alive on for every accepted connection,
	// four setsockopt calls each, to find a peer that vanished without
	// a word. -idle-timeout finds it too: a negative KeepAlive, none.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer ln.Close()
	// Print the real address: with port 0 the kernel chose the port.
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	return acceptLoop(ctx, ln, cfg, stdout)
}

// acceptLoop serves the clients of ln one after another until ctx is
// cancelled. (A test hands it a listener that fails as a kernel can.)
func acceptLoop(ctx context.Context, ln net.Listener, cfg config, stdout io.Writer) error {
	// Ctrl+C closes the listener, which wakes a blocked Accept. Clients
	// still waiting in the backlog were never accepted: the kernel resets
	// them when the listener closes.
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
			if !isTemporary(err) {
				return fmt.Errorf("accept: %w", err)
			}
			// Out of file descriptors, or a client that gave up before we
			// took it: the listener is fine. Wait, longer each time up to a
			// second, and retry; log once as trouble starts, once as it ends.
			if delay == 0 {
				fmt.Fprintf(stdout, "accept failed, retrying with back-off: %s\n", explain(err))
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

		// The heart of this lesson: the loop waits here until this
		// client is finished. Nobody else is greeted meanwhile.
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
