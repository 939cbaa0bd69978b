//go:build !unix

package main

import "errors"

// relisten cannot work here: Windows documents that a second listen()
// on a listening socket succeeds but keeps the old backlog.
func relisten(fd uintptr, backlog int) error {
	return errors.New("this system keeps the first backlog of a listening socket; the exercise needs Linux or macOS")
}
