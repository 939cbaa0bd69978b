package main

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// On macOS the best readiness API is kqueue, as in Python's
// selectors.DefaultSelector; poll is there to compare. This file is
// compiled and vetted for darwin but has not been run by the lesson's
// authors: see the README.
func defaultPoller() string     { return "kqueue" }
func pollerNames() []string     { return []string{"kqueue", "poll"} }
func newEpoll() (poller, error) { return nil, errors.New("epoll exists on Linux only") }

// kqueuePoller uses kqueue(2). Reading and writing are separate filters,
// so it remembers what each descriptor wants and changes only the
// difference.
type kqueuePoller struct {
	fd    int
	want  map[int]events
	buf   []unix.Kevent_t
	ready []event
}

func newKqueue() (poller, error) {
	fd, err := unix.Kqueue()
	if err != nil {
		return nil, fmt.Errorf("kqueue: %w", err)
	}
	return &kqueuePoller{fd: fd, want: map[int]events{}, buf: make([]unix.Kevent_t, 256)}, nil
}

func (p *kqueuePoller) change(fd int, old, want events) error {
	var changes []unix.Kevent_t
	for _, f := range []struct {
		ev     events
		filter int
	}{{canRead, unix.EVFILT_READ}, {canWrite, unix.EVFILT_WRITE}} {
		var k unix.Kevent_t
		switch {
		case want&f.ev != 0 && old&f.ev == 0:
			unix.SetKevent(&k, fd, f.filter, unix.EV_ADD|unix.EV_ENABLE)
		case want&f.ev == 0 && old&f.ev != 0:
			unix.SetKevent(&k, fd, f.filter, unix.EV_DELETE)
		default:
			continue
		}
		changes = append(changes, k)
	}
	if len(changes) > 0 {
		if _, err := unix.Kevent(p.fd, changes, nil, nil); err != nil {
			return fmt.Errorf("kevent: %w", err)
		}
	}
	p.want[fd] = want
	return nil
}

func (p *kqueuePoller) add(fd int, want events) error    { return p.change(fd, 0, want) }
func (p *kqueuePoller) modify(fd int, want events) error { return p.change(fd, p.want[fd], want) }
func (p *kqueuePoller) close() error                     { return unix.Close(p.fd) }
func (p *kqueuePoller) String() string                   { return "kqueue" }

func (p *kqueuePoller) remove(fd int) error {
	err := p.change(fd, p.want[fd], 0)
	delete(p.want, fd)
	return err
}

func (p *kqueuePoller) wait(timeout time.Duration) ([]event, error) {
	var ts *unix.Timespec
	if timeout >= 0 {
		t := unix.NsecToTimespec(int64(timeout))
		ts = &t
	}
	n, err := unix.Kevent(p.fd, nil, p.buf, ts)
	if err == unix.EINTR {
		return nil, nil // a signal, e.g. Go's preemption: ask again
	}
	if err != nil {
		return nil, fmt.Errorf("kevent: %w", err)
	}
	p.ready = p.ready[:0]
	for _, k := range p.buf[:n] {
		var ev events
		switch {
		case k.Flags&unix.EV_ERROR != 0:
			ev = canRead | canWrite
		case k.Filter == unix.EVFILT_READ:
			ev = canRead
		case k.Filter == unix.EVFILT_WRITE:
			ev = canWrite
		}
		p.ready = append(p.ready, event{fd: int(k.Ident), ready: ev})
	}
	return p.ready, nil
}

// newSocket makes a non-blocking TCP socket that is closed in any child
// process we start. macOS has no SOCK_NONBLOCK flag, so it takes three
// calls; holding ForkLock stops os/exec from forking in between, as Go's
// own net package does.
func newSocket(family int) (int, error) {
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(family, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, err
	}
	return fd, nonblock(fd)
}

// acceptConn takes a connection from the backlog as a non-blocking,
// close-on-exec socket.
func acceptConn(lfd int) (int, unix.Sockaddr, error) {
	syscall.ForkLock.RLock()
	fd, sa, err := unix.Accept(lfd)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, nil, err
	}
	return fd, sa, nonblock(fd)
}

// newPipe makes the non-blocking pipe that wakes the loop.
func newPipe() (r, w int, err error) {
	var p [2]int
	syscall.ForkLock.RLock()
	err = unix.Pipe(p[:])
	if err == nil {
		unix.CloseOnExec(p[0])
		unix.CloseOnExec(p[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, -1, err
	}
	for _, fd := range p {
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(p[0])
			unix.Close(p[1])
			return -1, -1, err
		}
	}
	return p[0], p[1], nil
}

func nonblock(fd int) error {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return err
	}
	return nil
}
