//go:build linux || darwin

package main

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// pollPoller uses poll(2), the readiness call every Unix has. The kernel
// gets the whole list on every call and checks every entry, so its cost
// grows with the number of connections, ready or not.
type pollPoller struct {
	fds   []unix.PollFd
	index map[int]int // fd → its position in fds
	ready []event
	// next is where the next scan of the results starts: just after
	// the last ready socket of the previous one.
	next int
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

// forget takes fd out of the list: poll's interest list is this
// program's slice, and no close can change it.
func (p *pollPoller) forget(fd int) { p.remove(fd) }

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
	// poll marks the ready entries in place, in the list's order. Read
	// from the start every time, and the sockets at the end of the list
	// would always be served last. So each scan goes round the list
	// from where the last one stopped: sockets that had to wait for the
	// others last time come first now.
	p.ready = p.ready[:0]
	n := len(p.fds)
	start := 0
	if p.next < n {
		start = p.next
	}
	for k := 0; k < n; k++ {
		i := (start + k) % n
		pfd := p.fds[i]
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
		p.next = i + 1
	}
	return p.ready, nil
}

func (p *pollPoller) close() error   { return nil }
func (p *pollPoller) String() string { return "poll" }
