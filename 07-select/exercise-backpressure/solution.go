//go:build solution && (linux || darwin)

// The reference solution: compare it with your starter.go once your
// tests pass, or when you are stuck.
package main

import "golang.org/x/sys/unix"

// send queues reply for the client c and writes what the kernel takes
// now; the rest waits in c.out for poll to report room (POLLOUT).
// reply is the loop's scratch space, so it is copied, by append.
func (l *loop) send(c *conn, reply []byte) {
	c.out = append(c.out, reply...)
	l.flush(c)
}

// flush writes as much of c.out as the kernel takes now, and returns
// false if the connection is gone. A write may take all, part or none
// (EAGAIN) of the bytes: what is left waits for the next POLLOUT.
func (l *loop) flush(c *conn) bool {
	for len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if err == unix.EINTR {
			continue // a signal interrupted it: try again
		}
		if err == unix.EAGAIN {
			break // the kernel's send buffer is full
		}
		if err != nil {
			l.drop(c, err)
			return false
		}
		c.out = c.out[n:]
	}
	if len(c.out) == 0 {
		c.out = nil // an idle client keeps no buffer
	}
	return true
}

// interest says what poll should watch c for, in the next round:
// POLLOUT while replies wait, POLLIN while one more reply fits under
// -max-buffered. Poll is level-triggered, and the loop builds the list
// afresh every round, so this is all backpressure takes.
func (l *loop) interest(c *conn) int16 {
	var want int16
	if len(c.out) > 0 {
		want |= unix.POLLOUT
	}
	if !c.eof && len(c.out)+len(marker)+chunkSize <= l.cfg.maxBuffered {
		want |= unix.POLLIN
	}
	return want
}
