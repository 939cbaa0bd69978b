// The -client: it speaks the protocol of the handler it is given.

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// errFramedReply is what the line client says when a reply starts with
// a zero byte, as the 4-byte length of a cmd frame always does (a frame
// is at most 1 MiB). Printing it as a line would print the raw header.
var errFramedReply = errors.New("the reply starts with a zero byte, as a frame's length does")

// message is one reply from the server, or, with err set, the end of
// what it sends.
type message struct {
	data []byte
	err  error
}

// runClient connects to addr, then sends each line of stdin and prints
// the server's answer: a line for upper, a frame for cmd. It waits for
// each answer before it sends the next line, so each is printed under
// the question that caused it. It ends in one of four ways, as every
// lesson's client does:
//
//   - stdin ends first: it half-closes the connection, prints the
//     answers still to come, and returns nil when the server closes;
//   - the server closes first: it prints what the server sent (a
//     "bye: ..." line too, as the server's own line), then says
//     "server closed the connection" on stderr, and returns nil;
//   - ctx ends (Ctrl+C): it closes the connection and returns nil;
//   - anything else (refused, reset, no answer in time) is an error.
func runClient(ctx context.Context, addr, handler string, timeout time.Duration, stdin io.Reader, stdout, stderr io.Writer) error {
	dialer := net.Dialer{Timeout: 5 * time.Second}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil // Ctrl+C while connecting
		}
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	done := make(chan struct{})
	defer close(done)

	// One goroutine reads the server, so that a farewell and the close
	// are seen when they arrive, even while we wait for stdin; another
	// reads stdin.
	messages := make(chan message)
	go readMessages(conn, handler, messages, done)
	input := make(chan message)
	go readInput(stdin, input, done)

	var (
		sent       string           // the last line sent
		awaiting   bool             // a reply to sent is due
		halfClosed bool             // stdin ended and we said so
		sendFailed bool             // a write failed: the server is gone
		late       <-chan time.Time // fires when what we wait for is late; nil: not waiting
	)
	for {
		in := input
		if awaiting || sendFailed {
			in = nil // one question at a time
		}
		select {
		case <-ctx.Done():
			return nil

		case line := <-in:
			if line.err != nil {
				if !errors.Is(line.err, io.EOF) {
					return fmt.Errorf("read standard input: %w", line.err)
				}
				// Half-close: the server reads EOF, and we still read
				// what it has to say. (If the server has closed already,
				// this may fail; its EOF comes through messages anyway.)
				input, halfClosed = nil, true
				conn.(*net.TCPConn).CloseWrite()
				late = time.After(timeout)
				continue
			}
			conn.SetWriteDeadline(time.Now().Add(timeout))
			if _, err := fmt.Fprintf(conn, "%s\n", line.data); err != nil {
				if isTimeout(err) {
					return fmt.Errorf("send to %s: %w", addr, err)
				}
				// EPIPE or ECONNRESET: the server has closed. What it
				// sent before that still comes through messages.
				sendFailed = true
				continue
			}
			sent, awaiting = string(line.data), true
			late = time.After(timeout)

		case m := <-messages:
			if m.err != nil {
				switch {
				case ctx.Err() != nil:
					return nil
				case errors.Is(m.err, io.EOF) && halfClosed:
					return nil
				case errors.Is(m.err, io.EOF), sendFailed && isReset(m.err):
					fmt.Fprintln(stderr, "server closed the connection")
					return nil
				}
				return fmt.Errorf("read from %s: %w", addr, m.err)
			}
			if handler != "cmd" && len(m.data) > 0 && m.data[0] == 0 && (sent == "" || sent[0] != 0) {
				return fmt.Errorf("read from %s: %w", addr, errFramedReply)
			}
			stdout.Write(m.data)
			if len(m.data) == 0 || m.data[len(m.data)-1] != '\n' {
				io.WriteString(stdout, "\n")
			}
			awaiting, late = false, nil
			if halfClosed {
				late = time.After(timeout)
			}

		case <-late:
			return fmt.Errorf("read from %s: %w", addr, os.ErrDeadlineExceeded)
		}
	}
}

// readMessages sends each reply on conn to messages, then the error that
// ended the stream (io.EOF when the server closed between replies). It
// stops early once done is closed.
func readMessages(conn net.Conn, handler string, messages chan<- message, done <-chan struct{}) {
	replies := bufio.NewReaderSize(conn, maxLine)
	for {
		var m message
		if handler == "cmd" {
			m.data, m.err = readFrame(replies)
		} else {
			var line []byte
			line, m.err = readLine(replies)
			// ReadSlice's bytes belong to the reader and change with
			// the next read: keep a copy.
			m.data = append([]byte(nil), line...)
		}
		select {
		case messages <- m:
		case <-done:
			return
		}
		if m.err != nil {
			return
		}
	}
}

// readInput sends each line of stdin to input, then the error that
// ended it: io.EOF at the end of the input.
func readInput(stdin io.Reader, input chan<- message, done <-chan struct{}) {
	lines := bufio.NewScanner(stdin)
	for {
		m := message{err: io.EOF}
		if lines.Scan() {
			m = message{data: append([]byte(nil), lines.Bytes()...)}
		} else if err := lines.Err(); err != nil {
			m.err = err
		}
		select {
		case input <- m:
		case <-done:
			return
		}
		if m.err != nil {
			return
		}
	}
}
