//go:build !solution

package main

//lint:file-ignore U1000 reverse is used once TODO 2 registers it

import (
	"bufio"
	"net"
)

// registerHandlers adds this exercise's handlers to the ones main.go
// knows, under the names -handler accepts. See README.md for the task.
func registerHandlers(handlers map[string]Handler) {
	// TODO 2: register reverse under the name "reverse". A plain
	// function becomes a Handler through HandlerFunc.
}

// reverse answers every line with its characters in reverse order.
//
// As it stands it echoes every line unchanged.
func reverse(conn net.Conn) {
	// TODO 1: reverse each line's characters (runes), not its bytes:
	// "héllo" must come back as "olléh". Keep bytes that are not valid
	// UTF-8 as they are. A line over maxLine gets
	//   error: line longer than 4096 bytes, closing
	// and the connection closes, as upper does in main.go.
	lines := bufio.NewReaderSize(conn, maxLine)
	for {
		line, err := readLine(lines)
		if err != nil {
			return
		}
		if _, err := conn.Write(append(line, '\n')); err != nil {
			return
		}
	}
}
