//go:build linux || darwin

package main

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
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
	// wait returns the ready descriptors; a negative timeout waits for
	// ever. An interrupted wait (EINTR) returns no events and no error.
	wait(timeout time.Duration) ([]event, error)
	close() error
	String() string
}

// millis turns a timeout into the milliseconds poll and epoll_wait take,
// rounding up: rounding down would wake us just before a deadline, and
// the loop would spin until it passed.
func millis(d time.Duration) int {
	if d < 0 {
		return -1
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

// newPoll makes a poller that uses poll(2).
func newPoll() poller { return &pollPoller{index: map[int]int{}} }

// pollPoller uses poll(2), the readiness call every Unix has. The kernel
// gets the whole list on every call and checks every entry, so its cost
// grows with the number of connections, ready or not.
type pollPoller struct {
	fds   []unix.PollFd
	index map[int]int // fd → its position in fds
	ready []event
}

func pollBits(want events) int16 {
	var bits int16
	if want&canRead != 0 {
		bits |= unix.POLLIN
	}
	if want&canWrite != 0 {
		bits |= unix.POLLOUT
	}
	return bits
}

func (p *pollPoller) add(fd int, want events) error {
	if _, ok := p.index[fd]; ok {
		return fmt.Errorf("poll: fd %d added twice", fd)
	}
	p.index[fd] = len(p.fds)
	p.fds = append(p.fds, unix.PollFd{Fd: int32(fd), Events: pollBits(want)})
	return nil
}

func (p *pollPoller) modify(fd int, want events) error {
	i, ok := p.index[fd]
	if !ok {
		return fmt.Errorf("poll: fd %d is not watched", fd)
	}
	p.fds[i].Events = pollBits(want)
	return nil
}

// remove moves the last entry into the hole, so removing costs O(1).
func (p *pollPoller) remove(fd int) error {
	i, ok := p.index[fd]
	if !ok {
		return fmt.Errorf("poll: fd %d is not watched", fd)
	}
	last := len(p.fds) - 1
	p.fds[i] = p.fds[last]
	p.index[int(p.fds[i].Fd)] = i
	p.fds = p.fds[:last]
	delete(p.index, fd)
	return nil
}

func (p *pollPoller) wait(timeout time.Duration) ([]event, error) {
	_, err := unix.Poll(p.fds, millis(timeout))
	if err == unix.EINTR {
		// A signal arrived. Go's runtime sends SIGURG to preempt
		// goroutines, so this is not rare: just ask again.
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("poll: %w", err)
	}
	// poll marks the ready entries in place: look at every one.
	p.ready = p.ready[:0]
	for _, pfd := range p.fds {
		re := pfd.Revents
		if re == 0 {
			continue
		}
		// A hang-up or an error is reported as "ready": the next read
		// or write returns what happened.
		var ev events
		if re&(unix.POLLIN|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
			ev |= canRead
		}
		if re&(unix.POLLOUT|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
			ev |= canWrite
		}
		p.ready = append(p.ready, event{fd: int(pfd.Fd), ready: ev})
	}
	return p.ready, nil
}

func (p *pollPoller) close() error   { return nil }
func (p *pollPoller) String() string { return "poll" }
