//go:build !solution && (linux || darwin)

// Your work: send, flush and interest. Run the tests with
//
//	go test -tags exercise ./07-select/exercise-backpressure/
//
// They fail until a client that reads late gets every byte back, and
// a client that never reads costs the server at most -max-buffered.
package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// send hands reply to the client c. The loop calls it for the greeting
// and for every "OK..." reply. reply is the loop's scratch space and is
// reused on the next read: keep a copy, never the slice itself.
//
// As it stands, send is the article's server: one write, and whatever
// the kernel does not take is lost. With a client that sends but does
// not read, the kernel's send buffer fills, the write takes part of the
// reply or none of it (EAGAIN), and the client never sees the rest.
func (l *loop) send(c *conn, reply []byte) {
	// TODO 1: append reply to c.out, then call l.flush(c) to write as
	// much of c.out as the kernel takes now. The rest waits in c.out.
	n, err := unix.Write(c.fd, reply)
	if err == unix.EAGAIN {
		n, err = 0, nil
	}
	if err != nil {
		l.drop(c, err)
		return
	}
	if n < len(reply) {
		fmt.Fprintf(l.log, "client %s: the kernel took %d of %d bytes; the rest is lost\n", c.peer, n, len(reply))
	}
}

// flush writes as much of c.out as the kernel takes now, and returns
// false if the connection is gone (l.drop closed it). The loop calls it
// when poll says c is writable and c.out is not empty.
func (l *loop) flush(c *conn) bool {
	// TODO 2: write c.out with unix.Write until it is empty or the
	// kernel says unix.EAGAIN (its buffer is full: stop, poll will say
	// when there is room). Keep what was not written in c.out. Any
	// other error: l.drop(c, err) and return false.
	return true
}

// interest says what poll should watch c for, in the next round.
func (l *loop) interest(c *conn) int16 {
	// TODO 3: ask for unix.POLLOUT while c.out is not empty: the loop
	// then calls flush as soon as the kernel has room.
	//
	// TODO 4: ask for unix.POLLIN only while c.out has room for one
	// more reply: len(c.out)+len(marker)+chunkSize <= l.cfg.maxBuffered.
	// A client whose replies pile up is not read until they drain: its
	// requests wait in the kernel, and its writes block, not the server.
	if c.eof {
		return 0 // it has finished sending: nothing to read
	}
	return unix.POLLIN
}
