// The -client of 06-goroutines: print the greeting, then send each line
// of standard input and print the reply under it.

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"
)

// runClient connects to addr, prints the greeting, then for each line of
// stdin sends it and prints the reply. It ends in one of four ways, the
// same in every lesson:
//
//   - stdin ends: it half-closes the connection, prints whatever the
//     server still sends, and returns nil when the server closes;
//   - the server closes first, while there may be input left: it prints
//     what the server sent (a "bye: ..." line as the server's own line, not
//     as the reply to the last one), says "server closed the connection" on
//     stderr and returns nil;
//   - Ctrl+C (ctx is cancelled): it closes and returns nil, saying nothing;
//   - a real error (refused, reset, timeout): it returns it.
func runClient(ctx context.Context, addr string, timeout time.Duration, stdin io.Reader, stdout, stderr io.Writer) error {
	dialer := net.Dialer{Timeout: 5 * time.Second}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	stopConn := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopConn()
	done := make(chan struct{}) // closed when runClient returns
	defer close(done)

	// The server's lines are read in a goroutine of its own, so that a
	// line it sends unasked (a goodbye, while we wait for the user to
	// type) is printed at once. serverErr says why the lines ended.
	fromServer := make(chan string)
	var serverErr error // set before fromServer is closed
	go func() {
		defer close(fromServer)
		replies := bufio.NewReader(conn)
		for {
			line, err := replies.ReadString('\n')
			if line != "" {
				select {
				case fromServer <- line:
				case <-done:
					return
				}
			}
			if err != nil {
				serverErr = err
				return
			}
		}
	}()

	// Standard input, too, is read in a goroutine of its own, so that
	// Ctrl+C does not wait for a terminal's Enter key.
	fromUser := make(chan string)
	var inputErr error // set before fromUser is closed
	go func() {
		defer close(fromUser)
		lines := bufio.NewScanner(stdin)
		for lines.Scan() {
			select {
			case fromUser <- lines.Text():
			case <-done:
				return
			}
		}
		inputErr = lines.Err()
	}()

	// closed turns the end of the server's lines into how the
	// conversation ended.
	closed := func() error {
		switch {
		case ctx.Err() != nil:
			return nil // Ctrl+C closed the connection under us
		case errors.Is(serverErr, io.EOF):
			fmt.Fprintln(stderr, "server closed the connection")
			return nil
		}
		return fmt.Errorf("read from %s: %w", addr, serverErr)
	}
	// receive waits at most timeout for the server's next line and
	// prints it. It reports false when the server has no more lines.
	receive := func() (string, bool) {
		conn.SetReadDeadline(time.Now().Add(timeout))
		defer conn.SetReadDeadline(time.Time{}) // none while the user types
		line, more := <-fromServer
		fmt.Fprint(stdout, line)
		return line, more
	}

	if _, more := receive(); !more { // the greeting, or a goodbye
		return closed()
	}
	for {
		var line string
		var more bool
		select {
		case unasked, ok := <-fromServer:
			// The server spoke unasked: it is saying goodbye. Whatever it
			// said comes before the next line of input.
			fmt.Fprint(stdout, unasked)
			if !ok {
				return closed()
			}
			continue
		default:
		}
		select {
		case line, more = <-fromUser:
		case unasked, ok := <-fromServer:
			fmt.Fprint(stdout, unasked)
			if !ok {
				return closed()
			}
			continue
		case <-ctx.Done():
			return nil
		}
		if !more {
			break
		}
		conn.SetWriteDeadline(time.Now().Add(timeout))
		if _, err := fmt.Fprintf(conn, "%s\n", line); err != nil {
			if isErrno(err, syscall.EPIPE) {
				fmt.Fprintln(stderr, "server closed the connection")
				return nil
			}
			return fmt.Errorf("send to %s: %w", addr, err)
		}
		// Wait for the reply before sending the next line, so each
		// answer is printed under the question that caused it. A goodbye
		// is not an answer: after it, only the end of the stream comes.
		reply, more := receive()
		for more && strings.HasPrefix(reply, "bye: ") {
			reply, more = receive()
		}
		if !more {
			return closed()
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if inputErr != nil {
		return fmt.Errorf("read standard input: %w", inputErr)
	}

	// Half-close: the server reads EOF, but we can still read its answer.
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		return fmt.Errorf("close write side: %w", err)
	}
	for {
		if _, more := receive(); !more {
			break
		}
	}
	if errors.Is(serverErr, io.EOF) || ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("read from %s: %w", addr, serverErr)
}
