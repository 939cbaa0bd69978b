//go:build solution

package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"unicode/utf8"
)

// registerHandlers adds this exercise's handlers to the ones main.go
// knows, under the names -handler accepts.
func registerHandlers(handlers map[string]Handler) {
	handlers["reverse"] = HandlerFunc(reverse)
}

// reverse answers every line with its characters in reverse order.
func reverse(conn net.Conn) {
	lines := bufio.NewReaderSize(conn, maxLine)
	for {
		line, err := readLine(lines)
		if errors.Is(err, errLineTooLong) {
			fmt.Fprintf(conn, "error: %v, closing\n", err)
			return
		}
		if err != nil {
			return
		}
		if _, err := conn.Write(append(reverseRunes(line), '\n')); err != nil {
			return
		}
	}
}

// reverseRunes reverses characters, not bytes: "é" is two bytes in
// UTF-8, and those two bytes in the other order are not a character.
// Bytes that are not valid UTF-8 are kept as they are, one by one.
func reverseRunes(line []byte) []byte {
	out := make([]byte, len(line))
	end := len(out)
	for len(line) > 0 {
		_, size := utf8.DecodeRune(line)
		end -= size
		copy(out[end:], line[:size])
		line = line[size:]
	}
	return out
}
