package main

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

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
// close-on-exec socket. If making it non-blocking fails, the socket is
// closed and the error comes with the client's address: that client is
// lost, but the listener is fine (see eventLoop.accept).
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
	if err := nonblock(fd); err != nil {
		return -1, sa, os.NewSyscallError("fcntl", err)
	}
	return fd, sa, nil
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
