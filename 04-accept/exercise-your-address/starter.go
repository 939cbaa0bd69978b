//go:build !solution

package main

import "net"

// greet tells the client where it is. See README.md for the task.
//
// As it stands it says nothing: the client sees the connection close.
func greet(conn net.Conn) error {
	// TODO 1: write "you are " and the client's address and port, and
	// a newline. The server sees the client's side of the connection
	// as conn.RemoteAddr().
	//
	// TODO 2: write "I am " and the server's side, conn.LocalAddr(),
	// and a newline.
	//
	// Set a write deadline first, and return a write error wrapped
	// with %w. The code in main.go closes the connection cleanly.
	_ = conn
	return nil
}
