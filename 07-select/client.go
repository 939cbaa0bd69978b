package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// errServerClosed is how the client learns that the server ended the
// conversation (its idle timeout, a shutdown, too many connections).
var errServerClosed = errors.New("server closed the connection")

// runClient is the interactive client of lessons 05 and 06. It uses the
// net package: one connection needs no readiness loop. It connects to
// addr, prints the greeting, then sends each line
// of stdin and prints the reply under it. When stdin ends, it
// half-closes the connection, prints whatever the server still sends and
// returns when the server closes. If the server closes first, it prints
// the server's last words, says so once on stderr, and returns nil, as
// it does, silently, on Ctrl+C. Other errors (refused, reset, a reply
// that takes longer than timeout) are returned.
func runClient(ctx context.Context, addr string, timeout time.Duration, stdin io.Reader, stdout, stderr io.Writer) error {
	dialer := net.Dialer{Timeout: 5 * time.Second}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil // Ctrl+C while connecting
		}
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	// Ctrl+C also ends a Write that waits for a server that reads nothing.
	stopConn := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopConn()

	err = talk(ctx, conn.(*net.TCPConn), addr, timeout, stdin, stdout)
	switch {
	case ctx.Err() != nil:
		return nil // Ctrl+C: close and go, nothing to say
	case errors.Is(err, errServerClosed):
		fmt.Fprintln(stderr, "server closed the connection")
		return nil
	}
	return err
}

// talk is the conversation itself. Two goroutines read for it, the
// server's lines and the lines of stdin, so that it can wait for either,
// and for Ctrl+C, at once.
func talk(ctx context.Context, conn *net.TCPConn, addr string, timeout time.Duration, stdin io.Reader, stdout io.Writer) error {
	done := make(chan struct{})
	defer close(done)
	fromServer := readLines(conn, done)
	fromStdin := readLines(stdin, done)

	// show prints a line from the server and says what its error means.
	// After the server's own last words, a reset means it closed too.
	lastWords := false
	show := func(got line) error {
		fmt.Fprint(stdout, got.line)
		switch {
		case errors.Is(got.err, io.EOF), lastWords && isReset(got.err):
			return errServerClosed
		case got.err != nil:
			return fmt.Errorf("read from %s: %w", addr, got.err)
		}
		return nil
	}
	// serverLine waits up to timeout for one line from the server, prints
	// it, and returns it. If the server is full (-max-conns), this is
	// where the greeting makes us wait in its backlog.
	serverLine := func() (string, error) {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-timer.C:
			return "", fmt.Errorf("read from %s: %w", addr, os.ErrDeadlineExceeded)
		case got := <-fromServer:
			return got.line, show(got)
		}
	}

	if _, err := serverLine(); err != nil {
		return err
	}
	for {
		var in line
		select {
		case <-ctx.Done():
			return ctx.Err()
		case got := <-fromServer:
			// The server spoke first, while we waited for input: its
			// last words ("bye: ..."), then it closes.
			lastWords = got.line != ""
			if err := show(got); err != nil {
				return err
			}
			return errServerClosed
		case in = <-fromStdin:
		}
		if in.line != "" {
			text := strings.TrimSuffix(strings.TrimSuffix(in.line, "\n"), "\r")
			if err := conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
				return err
			}
			if _, err := io.WriteString(conn, text+"\n"); err != nil {
				if isReset(err) {
					// It closed before it could read this. Print what
					// it said before it went, if that came in time.
					if got, ok := lineWithin(fromServer, 100*time.Millisecond); ok {
						fmt.Fprint(stdout, got.line)
					}
					return errServerClosed
				}
				return fmt.Errorf("send to %s: %w", addr, err)
			}
			// Wait for the reply before sending the next line, so each
			// answer is printed under the question that caused it. A
			// line that is not a reply is the server's own: print it
			// and read on, for the server closes next.
			for {
				reply, err := serverLine()
				if err != nil {
					return err
				}
				if strings.HasPrefix(reply, "OK...") {
					break
				}
				lastWords = true
			}
		}
		if errors.Is(in.err, io.EOF) {
			break
		}
		if in.err != nil {
			return fmt.Errorf("read standard input: %w", in.err)
		}
	}

	// Half-close: the server reads EOF, but we can still read its answer.
	if err := conn.CloseWrite(); err != nil {
		return fmt.Errorf("close write side: %w", err)
	}
	for {
		if _, err := serverLine(); errors.Is(err, errServerClosed) {
			return nil // the end we asked for
		} else if err != nil {
			return err
		}
	}
}

// lineWithin returns the next line from lines if it comes within d.
func lineWithin(lines <-chan line, d time.Duration) (line, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case got := <-lines:
		return got, true
	case <-timer.C:
		return line{}, false
	}
}

// line is one line read by readLines, with its newline, and the error
// that came with it (io.EOF at the end).
type line struct {
	line string
	err  error
}

// readLines reads r line by line in a goroutine of its own, and sends
// each line on the channel it returns, until an error or until done is
// closed.
func readLines(r io.Reader, done <-chan struct{}) <-chan line {
	lines := make(chan line)
	go func() {
		br := bufio.NewReader(r)
		for {
			s, err := br.ReadString('\n')
			select {
			case lines <- line{s, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return lines
}
