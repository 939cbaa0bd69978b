// The -client of 04-accept: send each line of standard input, print the
// server's reply under it.

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// runClient connects to addr, then for each line of stdin sends it and
// prints the reply. It ends in one of four ways, the same in every
// lesson:
//
//   - stdin ends: it half-closes the connection, prints whatever the
//     server still sends, and returns nil when the server closes;
//   - the server closes first, while there is input left: it prints what
//     the server sent, says "server closed the connection" on stderr and
//     returns nil;
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

	// ended turns the error that stopped a read or a write into how the
	// conversation ended.
	ended := func(op string, err error) error {
		switch {
		case ctx.Err() != nil:
			return nil // Ctrl+C closed the connection under us
		case errors.Is(err, io.EOF) || isErrno(err, syscall.EPIPE):
			fmt.Fprintln(stderr, "server closed the connection")
			return nil
		}
		return fmt.Errorf("%s %s: %w", op, addr, err)
	}

	// Standard input is read in a goroutine of its own, so that Ctrl+C
	// does not wait for a terminal's Enter key.
	lines := make(chan string)
	var inputErr error // set before lines is closed
	go func() {
		defer close(lines)
		scanner := bufio.NewScanner(stdin)
		for scanner.Scan() {
			select {
			case lines <- scanner.Text():
			case <-ctx.Done():
				return
			}
		}
		inputErr = scanner.Err()
	}()

	replies := bufio.NewReader(conn)
	for {
		var line string
		var more bool
		select {
		case line, more = <-lines:
		case <-ctx.Done():
			return nil
		}
		if !more {
			break
		}
		if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(conn, "%s\n", line); err != nil {
			return ended("send to", err)
		}
		// Wait for the reply before sending the next line, so each
		// answer is printed under the question that caused it.
		reply, err := replies.ReadString('\n')
		fmt.Fprint(stdout, reply)
		if err != nil {
			return ended("read from", err)
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
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := io.Copy(stdout, replies); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("read from %s: %w", addr, err)
	}
	return nil
}
