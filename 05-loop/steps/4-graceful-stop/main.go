// Step 4: a clean stop. Ctrl+C (or SIGTERM) cancels a context instead of
// killing the process. The listener closes, which wakes Accept; the
// client being served gets -grace to take the reply being written, then
// "bye: server shutting down" and a clean end of stream; main exits 0.
//
// Still, any error from Accept ends the server, and some of them pass:
// out of file descriptors (EMFILE) is over as soon as a client leaves.
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
	grace time.Duration // how long shutdown may spend on the client being served
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9005", "host:port to listen on")
	var cfg config
	flag.DurationVar(&cfg.idle, "idle-timeout", 2*time.Minute, "close a client that sends nothing, or reads nothing, for this long")
	flag.DurationVar(&cfg.grace, "grace", 5*time.Second, "on Ctrl+C, how long to spend saying goodbye to the client being served")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", ln.Addr())
	if err := acceptLoop(ctx, ln, cfg, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// acceptLoop serves the clients of ln one after another until ctx is
// cancelled; it logs to stdout (tests pass their own writer).
func acceptLoop(ctx context.Context, ln net.Listener, cfg config, stdout io.Writer) error {
	// Ctrl+C closes the listener, which wakes a blocked Accept.
	stopAccept := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopAccept()

	for ctx.Err() == nil {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				break
			}
			return err
		}
		handle(ctx, conn, cfg, stdout)
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}

// Why a conversation ends, besides the errors of Read and Write:
var (
	errIdle       = errors.New("client sent nothing for the idle timeout")
	errNotReading = errors.New("client does not read its replies")
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
	// Two fixed buffers: whatever the client sends, this connection
	// never holds more than 4096 bytes of it, and one reply.
	buf := make([]byte, 4096)
	reply := make([]byte, 0, len("OK...")+len(buf))

	if err := send(ctx, conn, []byte(greeting), cfg); err != nil {
		return err
	}
	for {
		// Each wait for the client gets a fresh deadline. Ctrl+C may
		// come just before this line undoes the stop signal's deadline,
		// so check for it after setting ours.
		if err := conn.SetReadDeadline(time.Now().Add(cfg.idle)); err != nil {
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
			if err := send(ctx, conn, reply, cfg); err != nil {
				return err
			}
		}
		switch {
		case err == nil:
			continue
		case isTimeout(err) && ctx.Err() != nil:
			return errStopping
		case isTimeout(err):
			return errIdle
		default:
			return err // io.EOF when the client left
		}
	}
}

// send writes p to the client. Write blocks while the client's buffers
// are full, so a client that never reads would hold the server, and
// everyone queued behind it, forever; the deadline cuts it off instead.
func send(ctx context.Context, conn net.Conn, p []byte, cfg config) error {
	if err := conn.SetWriteDeadline(time.Now().Add(cfg.idle)); err != nil {
		return err
	}
	if ctx.Err() != nil { // stopping: -grace is the limit now
		if err := conn.SetWriteDeadline(time.Now().Add(cfg.grace)); err != nil {
			return err
		}
	}
	if _, err := conn.Write(p); err != nil {
		if isTimeout(err) {
			return errNotReading
		}
		return err
	}
	return nil
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
