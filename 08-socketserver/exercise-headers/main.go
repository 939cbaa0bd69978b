// Exercise 08-socketserver/exercise-headers: messages that carry a small
// header, a type and a length, so the server knows where each message
// ends and what kind it is: a text to answer, or a ping to pong.
//
// This file is the part you do not write: flags, the accept loop, the
// client and the message writer (the error messages are in errors.go).
// Your part is the reading side, in starter.go: readMessage and handle.
//
// Run it:
//
//	go run ./08-socketserver/exercise-headers            # server
//	go run ./08-socketserver/exercise-headers -client    # type lines; /ping pings
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
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

// run is the whole program: the server, or with -client the client.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("exercise-headers", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:9008", "`host:port` to listen on, or to connect to with -client")
	client := flags.Bool("client", false, "send each line of standard input as a text message (\"/ping x\" sends a ping) and print each reply")
	idle := flags.Duration("idle-timeout", 2*time.Minute, "close a peer that sends or reads nothing for this long")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if flags.NArg() > 0 || *idle <= 0 {
		fmt.Fprintln(stderr, "no arguments; -idle-timeout must be positive")
		flags.Usage()
		return errUsage
	}
	if *client {
		return runClient(ctx, *addr, *idle, stdin, stdout)
	}

	if err := checkHostPort(*addr); err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	if err := serve(ctx, ln, handle, *idle, stdout); err != nil {
		// The listener broke for good: exit non-zero, so that a
		// supervisor that restarts failed services restarts this one.
		return err
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}

// ---- the wire format ----

// A message is a 3-byte header, then the payload:
//
//	1 byte    the type: one of the letters below
//	2 bytes   the payload's length L, big-endian, at most maxPayload
//	L bytes   the payload
//
// The letters make the bytes readable in a hex dump or with od -c.
const (
	typeText  = 'T' // client: text to answer; server: the answer
	typePing  = 'P' // client: are you there? the payload is anything
	typePong  = 'O' // server: yes; the payload is the ping's
	typeError = 'E' // server: why a message was not answered
)

// maxPayload bounds the memory one message can make the reader set
// aside. The length field could say up to 65535.
const maxPayload = 4096

// message is one header and its payload.
type message struct {
	kind    byte
	payload []byte
}

var errTooLarge = fmt.Errorf("over the limit of %d", maxPayload)

// writeMessage sends m's header and payload in one Write, so they
// leave in as few packets as possible. Reading them back is your part:
// readMessage, in starter.go.
func writeMessage(w io.Writer, m message) error {
	if len(m.payload) > maxPayload {
		return fmt.Errorf("message of %d bytes is %w", len(m.payload), errTooLarge)
	}
	buf := make([]byte, 3, 3+len(m.payload))
	buf[0] = m.kind
	binary.BigEndian.PutUint16(buf[1:], uint16(len(m.payload)))
	_, err := w.Write(append(buf, m.payload...))
	return err
}

// upperASCII upper-cases the ASCII letters and passes every other byte
// through, as the lesson's upper does (and Python's bytes.upper()). The
// answer is exactly as long as the line. (bytes.ToUpper would turn each
// byte that is not UTF-8 into the 3-byte U+FFFD, and some letters into
// longer ones: a line of 0xFF bytes would come back three times its
// size.)
func upperASCII(line []byte) []byte {
	out := make([]byte, len(line), len(line)+1)
	for i, b := range line {
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		out[i] = b
	}
	return out
}

// ---- the server ----

// serve accepts clients until ctx ends, gives each its own goroutine
// running h, then closes their connections and waits for them. It
// returns nil after ctx ends, and an error only if the listener is
// closed under it.
func serve(ctx context.Context, ln net.Listener, h func(net.Conn), idle time.Duration, log io.Writer) error {
	stopAccept := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopAccept()
	defer ln.Close()
	var mu sync.Mutex // one log line at a time
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(log, format, args...)
	}
	var handlers sync.WaitGroup
	defer handlers.Wait()
	failures := 0 // Accept errors in a row, for the back-off below
	for {
		conn, err := ln.Accept()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return nil // Ctrl+C closed the listener
			case errors.Is(err, net.ErrClosed):
				return fmt.Errorf("accept: %w", err)
			}
			// Any other failure is passing: above all "too many open
			// files" (EMFILE). The client stays in the backlog, so an
			// immediate retry fails again and the loop would spin:
			// wait longer after each failure, up to a second, and log
			// only the first of a streak. The lesson does the same.
			failures++
			if failures == 1 {
				logf("accept failed, retrying with back-off: %s\n", explain(err))
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
			logf("accepting again after %d failed attempts\n", failures)
			failures = 0
		}
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			stopConn := context.AfterFunc(ctx, func() { conn.Close() })
			defer stopConn()
			logf("client %s connected\n", conn.RemoteAddr())
			h(&idleConn{Conn: conn, idle: idle})
			closeGracefully(conn)
			logf("client %s left\n", conn.RemoteAddr())
		}()
	}
}

// idleConn gives every Read and Write a fresh deadline, as the lesson's
// serverConn does, so a silent client is closed after idle.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	return c.Conn.Write(p)
}

// closeGracefully ends a connection with a FIN rather than a reset, so
// the client gets our last message even if it sent more we never read.
func closeGracefully(conn net.Conn) {
	if tcp, ok := conn.(interface{ CloseWrite() error }); ok {
		tcp.CloseWrite()
		conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.Copy(io.Discard, io.LimitReader(conn, 1<<20))
	}
	conn.Close()
}

// ---- the client ----

// runClient sends each line of stdin as a text message, or as a ping
// when it starts with "/ping", and prints each reply on a line of its
// own. At the end of stdin it half-closes and prints what is left.
func runClient(ctx context.Context, addr string, idle time.Duration, stdin io.Reader, stdout io.Writer) error {
	if err := checkHostPort(addr); err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	dialer := net.Dialer{Timeout: 5 * time.Second}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	stopConn := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopConn()
	c := &idleConn{Conn: conn, idle: idle}
	replies := bufio.NewReader(c)

	// printReply prints one reply and reports whether the server has
	// closed the connection.
	printReply := func() (bool, error) {
		m, err := readMessage(replies)
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("read from %s: %w", addr, err)
		}
		names := map[byte]string{typeText: "text", typePong: "pong", typeError: "error"}
		name, ok := names[m.kind]
		if !ok {
			name = fmt.Sprintf("type %q", m.kind)
		}
		_, err = fmt.Fprintf(stdout, "%s: %s\n", name, m.payload)
		return false, err
	}

	lines := bufio.NewScanner(stdin)
	for lines.Scan() {
		m := message{kind: typeText, payload: []byte(lines.Text())}
		if rest, ok := strings.CutPrefix(lines.Text(), "/ping"); ok {
			m = message{kind: typePing, payload: []byte(strings.TrimPrefix(rest, " "))}
		}
		if err := writeMessage(c, m); err != nil {
			return fmt.Errorf("send to %s: %w", addr, err)
		}
		// Wait for the reply before sending the next line, so each
		// answer is printed under the question that caused it.
		closed, err := printReply()
		if closed || err != nil {
			return err
		}
	}
	if err := lines.Err(); err != nil {
		return fmt.Errorf("read standard input: %w", err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		return fmt.Errorf("close write side: %w", err)
	}
	for {
		closed, err := printReply()
		if closed || err != nil {
			return err
		}
	}
}
