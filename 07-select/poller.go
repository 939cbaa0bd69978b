//go:build linux || darwin

package main

import (
	"fmt"
	"time"
)

// events says what a socket is ready for, or what we want to hear about.
type events uint8

const (
	canRead events = 1 << iota
	canWrite
)

// event is one ready socket, as a poller reports it.
type event struct {
	fd    int
	ready events
}

// poller is what Python calls a selector: it watches many file
// descriptors and, in wait, blocks until some of them are ready (or the
// timeout passes). Interest is level-triggered, as in selectors: a socket
// with unread input is reported again and again until we read it.
type poller interface {
	add(fd int, want events) error
	modify(fd int, want events) error
	remove(fd int) error
	// forget is remove for a descriptor that is about to be closed.
	// Closing a socket takes it out of every epoll and kqueue set by
	// itself, so those back-ends skip remove's system call; poll's
	// list lives in the program, which must take the socket out.
	forget(fd int)
	// wait returns the ready descriptors; a negative timeout waits for
	// ever. An interrupted wait (EINTR) returns no events and no error.
	wait(timeout time.Duration) ([]event, error)
	close() error
	String() string
}

// newPoller builds the poller a name asks for. With busy it builds the
// articles' busy loop instead, which never waits at all.
func newPoller(name string, busy bool) (poller, error) {
	switch {
	case busy:
		return &busyPoller{want: map[int]events{}}, nil
	case name == "poll":
		return &pollPoller{index: map[int]int{}}, nil
	case name == "epoll":
		return newEpoll()
	case name == "kqueue":
		return newKqueue()
	}
	return nil, fmt.Errorf("unknown poller %q", name)
}

// millis turns a timeout into the milliseconds poll(2) takes,
// rounding up: rounding down would wake us just before a deadline, and
// the loop would spin until it passed.
func millis(d time.Duration) int {
	if d < 0 {
		return -1
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}
