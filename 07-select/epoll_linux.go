package main

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// On Linux the best readiness API is epoll, as in Python's
// selectors.DefaultSelector; poll is there to compare.
func defaultPoller() string { return "epoll" }
func pollerNames() []string { return []string{"epoll", "poll"} }
func newKqueue() (poller, error) {
	return nil, errors.New("kqueue exists on macOS and the BSDs, not on Linux")
}

// epoller uses epoll(7). The kernel keeps the interest list, so a wait
// costs what the ready sockets cost, not what all sockets cost.
type epoller struct {
	fd    int
	buf   []unix.EpollEvent
	ready []event
}

func newEpoll() (poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	return &epoller{fd: fd, buf: make([]unix.EpollEvent, 256)}, nil
}

func epollBits(want events) uint32 {
	var bits uint32
	if want&canRead != 0 {
		bits |= unix.EPOLLIN
	}
	if want&canWrite != 0 {
		bits |= unix.EPOLLOUT
	}
	return bits
}

func (p *epoller) ctl(op, fd int, want events) error {
	ev := unix.EpollEvent{Events: epollBits(want), Fd: int32(fd)}
	if err := unix.EpollCtl(p.fd, op, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

func (p *epoller) add(fd int, want events) error    { return p.ctl(unix.EPOLL_CTL_ADD, fd, want) }
func (p *epoller) modify(fd int, want events) error { return p.ctl(unix.EPOLL_CTL_MOD, fd, want) }
func (p *epoller) remove(fd int) error              { return p.ctl(unix.EPOLL_CTL_DEL, fd, 0) }
func (p *epoller) close() error                     { return unix.Close(p.fd) }
func (p *epoller) String() string                   { return "epoll" }

func (p *epoller) wait(timeout time.Duration) ([]event, error) {
	n, err := unix.EpollWait(p.fd, p.buf, millis(timeout))
	if err == unix.EINTR {
		return nil, nil // a signal, e.g. Go's preemption: ask again
	}
	if err != nil {
		return nil, fmt.Errorf("epoll_wait: %w", err)
	}
	p.ready = p.ready[:0]
	for _, e := range p.buf[:n] {
		var ev events
		if e.Events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			ev |= canRead
		}
		if e.Events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			ev |= canWrite
		}
		p.ready = append(p.ready, event{fd: int(e.Fd), ready: ev})
	}
	return p.ready, nil
}
