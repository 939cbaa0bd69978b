//go:build solution

package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"time"
)

// converse answers the client's commands, one line at a time, until
// the conversation ends, and returns why it ended.
//
// TCP carries bytes, not messages: one Read may return half a command,
// or three of them. A bufio.Scanner collects the bytes into lines,
// however they arrived. Its buffer is also its limit: a line longer
// than maxLine makes Scan stop with bufio.ErrTooLong, so a client that
// never sends a newline cannot make the server hold more than that.
func converse(ctx context.Context, conn net.Conn, idle time.Duration) error {
	lines := bufio.NewScanner(conn)
	lines.Buffer(make([]byte, maxLine), maxLine)
	for {
		// A fresh deadline for each line. Ctrl+C may come just before
		// this line undoes its deadline, so check for it after.
		if err := conn.SetReadDeadline(time.Now().Add(idle)); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return errStopping
		}
		if !lines.Scan() {
			// Err is nil at the end of the stream: the client left.
			return ending(ctx, lines.Err())
		}
		// Text has no "\n", and no "\r" before it either: telnet's
		// line ends are taken care of.
		line := lines.Text()
		if line == "" {
			continue // someone pressed Enter; nothing to answer
		}
		reply, err := answer(line)
		if err != nil {
			return err
		}
		if err := send(conn, reply+"\n", idle); err != nil {
			return err
		}
	}
}

// answer returns the reply to one command line, or errQuit.
func answer(line string) (string, error) {
	name, text, _ := strings.Cut(line, " ")
	switch {
	case line == "time":
		return time.Now().UTC().Format(time.RFC3339), nil
	case line == "quit":
		return "", errQuit
	case name == "echo":
		return text, nil
	}
	// %q quotes the line and escapes control bytes and invalid UTF-8,
	// so garbage cannot mess up the client's terminal.
	return fmt.Sprintf("unknown command %q", line), nil
}
