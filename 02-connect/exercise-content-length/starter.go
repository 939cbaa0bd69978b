//go:build !solution

// Your work: readBody. Run the tests with
//
//	go test -tags exercise ./02-connect/exercise-content-length/
//
// They fail until readBody does what README.md asks.
package main

import (
	"bufio"
	"errors"
)

// errTODO marks what is not written yet.
var errTODO = errors.New("not written yet: see the TODOs in starter.go")

// What you will call and return. This blank assignment only keeps
// linters from calling them unused until your code does; delete it then.
var _, _, _, _ = errNoLength, errBadLength, errBodyTooLarge, errBodyCut

// readBody reads the body that follows head from br: exactly as many
// bytes as head's Content-Length says, and not one more.
func readBody(br *bufio.Reader, head []string, limit int64) ([]byte, error) {
	// TODO: find the Content-Length header in head (skip head[0], the
	// status line). Header names ignore case: strings.EqualFold.
	// None: errNoLength. Not all digits, or two that differ:
	// errBadLength.
	// TODO: a length above limit: errBodyTooLarge, before reading.
	// TODO: read exactly that many bytes with io.ReadFull. If the
	// stream ends early, wrap errBodyCut AND io.ErrUnexpectedEOF, and
	// say how many bytes arrived.
	return nil, errTODO
}
