package main

import "golang.org/x/sys/unix"

// newSocket makes a non-blocking TCP socket that is closed in any child
// process we start (close-on-exec), in one system call.
func newSocket(family int) (int, error) {
	return unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
}

// acceptConn takes a connection from the backlog as a non-blocking,
// close-on-exec socket, in one system call.
func acceptConn(lfd int) (int, unix.Sockaddr, error) {
	return unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
}

// newPipe makes the non-blocking pipe that wakes the loop.
func newPipe() (r, w int, err error) {
	var p [2]int
	err = unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC)
	return p[0], p[1], err
}
