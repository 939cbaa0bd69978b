//go:build !linux && !darwin

package main

import "log"

// The steps of lesson 07 call poll, epoll and kqueue through
// golang.org/x/sys/unix, which Windows does not have.
func main() {
	log.Fatal("this step works with Unix file descriptors (poll, epoll, kqueue): it needs Linux, macOS or WSL")
}
