//go:build !solution

package main

import (
	"context"
	"net"
	"time"
)

// converse answers the client's commands, one line at a time, until
// the conversation ends, and returns why it ended. See README.md for
// the task.
//
// As it stands it is the lesson's loop: it answers each chunk that one
// Read returned with "OK..." and the chunk, whatever it holds.
func converse(ctx context.Context, conn net.Conn, idle time.Duration) error {
	// TODO 1: read lines, not chunks. One Read may hold half a command
	// or three of them. Wrap conn in a bufio.Scanner, and give it a
	// buffer of maxLine bytes as its limit (Scanner.Buffer), so that a
	// client that never sends a newline cannot make the server hold
	// more than that. When Scan returns false, return
	// ending(ctx, scanner.Err()): it turns the Scanner's nil into
	// io.EOF, and a passed deadline into errIdle or errStopping.
	// bufio.ErrTooLong passes through, and handle says so.
	buf := make([]byte, maxLine)
	for {
		// A fresh deadline for each wait. Ctrl+C may come just before
		// this line undoes its deadline, so check for it after.
		if err := conn.SetReadDeadline(time.Now().Add(idle)); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return errStopping
		}

		n, err := conn.Read(buf)
		if n > 0 {
			// TODO 2: answer each line (blank lines get no answer):
			//   time       the time now, UTC, RFC 3339: 2025-06-01T12:00:00Z
			//   echo TEXT  TEXT
			//   quit       return errQuit; handle says bye and closes
			//   anything   unknown command "anything"  (%q)
			// Each answer is one line, sent with send(conn, …, idle).
			if err := send(conn, "OK..."+string(buf[:n]), idle); err != nil {
				return err
			}
		}
		if err != nil {
			return ending(ctx, err)
		}
	}
}
