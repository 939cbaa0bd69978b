package main

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// newSocket makes a non-blocking TCP socket that is closed in any child
// process we start (close-on-exec), in one system call.
func newSocket(family int) (int, error) {
	return unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
}

// acceptConn takes a connection from the backlog as a non-blocking,
// close-on-exec socket, in one system call. It calls the standard
// library's syscall.Accept4, as Go's net package does: x/sys/unix's
// Accept4 also asks the listener for its protocol (getsockopt
// SO_PROTOCOL) on every IPv4 connection, to tell L2TP from TCP, a
// system call per client that a TCP server does not need.
func acceptConn(lfd int) (int, unix.Sockaddr, error) {
	fd, sa, err := syscall.Accept4(lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return fd, &unix.SockaddrInet4{Port: sa.Port, Addr: sa.Addr}, err
	case *syscall.SockaddrInet6:
		return fd, &unix.SockaddrInet6{Port: sa.Port, ZoneId: sa.ZoneId, Addr: sa.Addr}, err
	}
	return fd, nil, err
}

// newPipe makes the non-blocking pipe that wakes the loop.
func newPipe() (r, w int, err error) {
	var p [2]int
	err = unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC)
	return p[0], p[1], err
}
