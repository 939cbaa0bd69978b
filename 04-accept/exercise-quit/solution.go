//go:build solution

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// converse echoes each line the client sends until it says quit or
// leaves.
//
// TCP delivers a stream of bytes, not messages: one Read may return
// part of a line or several lines. A bufio.Scanner collects the bytes
// into lines, however they arrived, and caps a line at 64 KiB, so a
// client that never sends a newline cannot make the server's memory
// grow without end.
func converse(conn *net.TCPConn, idle time.Duration, stdout io.Writer) error {
	lines := bufio.NewScanner(conn)
	for {
		// A fresh deadline for each line: a client may talk for as
		// long as it likes, but may not fall silent for longer than idle.
		if err := conn.SetReadDeadline(time.Now().Add(idle)); err != nil {
			return fmt.Errorf("set deadline: %w", err)
		}
		if !lines.Scan() {
			if err := lines.Err(); err != nil {
				return fmt.Errorf("read from %s: %w", conn.RemoteAddr(), err)
			}
			// Scan returns false with no error at EOF: the client
			// closed its side without saying quit.
			fmt.Fprintln(stdout, "the client left")
			return nil
		}
		// Scanner drops the "\n" and a "\r" before it (telnet sends
		// both); TrimSpace forgives stray spaces around the word too.
		line := lines.Text()

		if err := conn.SetWriteDeadline(time.Now().Add(idle)); err != nil {
			return fmt.Errorf("set deadline: %w", err)
		}
		if strings.TrimSpace(line) == "quit" {
			if _, err := io.WriteString(conn, "bye\n"); err != nil {
				return fmt.Errorf("write to %s: %w", conn.RemoteAddr(), err)
			}
			fmt.Fprintln(stdout, "client said quit")
			return nil
		}
		if _, err := io.WriteString(conn, line+"\n"); err != nil {
			return fmt.Errorf("write to %s: %w", conn.RemoteAddr(), err)
		}
		fmt.Fprintf(stdout, "echoed %q\n", line)
	}
}
