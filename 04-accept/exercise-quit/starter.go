//go:build !solution

package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// converse echoes each line the client sends until it says quit or
// leaves. See README.md for the task.
//
// As it stands it is the lesson's server: one Read, one echo, done.
func converse(conn *net.TCPConn, idle time.Duration, stdout io.Writer) error {
	// TODO 1: read lines, not reads. One Read may hold part of a line
	// or several lines; wrap conn in a bufio.Scanner and call Scan.
	//
	// TODO 2: loop until the client leaves (Scan returns false and
	// Err is nil: print "the client left", return nil). Set the read
	// deadline to now+idle before each Scan; return any other error,
	// wrapped with %w.
	//
	// TODO 3: echo each line with its newline and print
	//   echoed "hello"
	// When the line is quit (ignore spaces and a \r around it), send
	// "bye\n" instead, print "client said quit" and return nil.
	buf := make([]byte, 1024)
	if err := conn.SetReadDeadline(time.Now().Add(idle)); err != nil {
		return err
	}
	n, err := conn.Read(buf)
	if n == 0 && errors.Is(err, io.EOF) {
		fmt.Fprintln(stdout, "the client left")
		return nil
	}
	if n == 0 {
		return fmt.Errorf("read from %s: %w", conn.RemoteAddr(), err)
	}
	if _, err := conn.Write(buf[:n]); err != nil {
		return fmt.Errorf("write to %s: %w", conn.RemoteAddr(), err)
	}
	fmt.Fprintf(stdout, "echoed %q\n", buf[:n])
	return nil
}
