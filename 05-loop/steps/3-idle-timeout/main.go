// Step 3: deadlines. Before each Read the server sets a deadline
// -idle-timeout ahead, and before each Write too. A client that says
// nothing for that long is told why and closed, and so is one that never
// reads its replies (its buffers fill and Write blocks). Either would
// otherwise hold the server, and everyone queued behind it, forever.
//
// Still, Ctrl+C kills the server at once: the client being served gets
// no goodbye, and a reply being written may be cut off.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"time"
)

const greeting = "welcome to 05-loop: every message you send comes back after OK...\n"

// config holds the limits that keep one bad client from hurting the rest.
type config struct {
	idle time.Duration // how long a client may stay silent, or leave replies unread
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9005", "host:port to listen on")
	var cfg config
	flag.DurationVar(&cfg.idle, "idle-timeout", 2*time.Minute, "close a client that sends nothing, or reads nothing, for this long")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", ln.Addr())
	log.Fatal(acceptLoop(ln, cfg, os.Stdout))
}

// acceptLoop serves the clients of ln one after another; it logs to
// stdout (tests pass their own writer).
func acceptLoop(ln net.Listener, cfg config, stdout io.Writer) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		handle(conn, cfg, stdout)
	}
}

// Why a conversation ends, besides the errors of Read and Write:
var (
	errIdle       = errors.New("client sent nothing for the idle timeout")
	errNotReading = errors.New("client does not read its replies")
)

// handle serves one client, logs how the conversation ended and closes
// the connection in the way that ending calls for.
func handle(conn net.Conn, cfg config, stdout io.Writer) {
	defer conn.Close()
	who := conn.RemoteAddr().String()
	fmt.Fprintf(stdout, "client %s connected\n", who)

	err := converse(conn, cfg)
	switch {
	case errors.Is(err, io.EOF):
		fmt.Fprintf(stdout, "client %s left\n", who)
	case errors.Is(err, errIdle):
		fmt.Fprintf(stdout, "client %s idle, closed\n", who)
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		fmt.Fprintf(conn, "bye: idle for %v, closing\n", cfg.idle)
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
func converse(conn net.Conn, cfg config) error {
	// Two fixed buffers: whatever the client sends, this connection
	// never holds more than 4096 bytes of it, and one reply.
	buf := make([]byte, 4096)
	reply := make([]byte, 0, len("OK...")+len(buf))

	if err := send(conn, []byte(greeting), cfg); err != nil {
		return err
	}
	for {
		// Each wait for the client gets a fresh deadline.
		if err := conn.SetReadDeadline(time.Now().Add(cfg.idle)); err != nil {
			return err
		}

		// Read returns whatever has arrived, 1 to 4096 bytes, or an
		// error. When the client has closed its side, it returns 0 and
		// io.EOF, and does so again at once on every later call: a loop
		// that only looked at n would spin here forever.
		n, err := conn.Read(buf)
		if n > 0 {
			reply = append(reply[:0], "OK..."...)
			reply = append(reply, buf[:n]...)
			if err := send(conn, reply, cfg); err != nil {
				return err
			}
		}
		switch {
		case err == nil:
			continue
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
func send(conn net.Conn, p []byte, cfg config) error {
	if err := conn.SetWriteDeadline(time.Now().Add(cfg.idle)); err != nil {
		return err
	}
	if _, err := conn.Write(p); err != nil {
		if isTimeout(err) {
			return errNotReading
		}
		return err
	}
	return nil
}

// isTimeout reports a deadline that passed.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
