//go:build !windows

package main

import "syscall"

// winsock is empty outside Windows: there, syscall.E* are the numbers
// the system reports.
var winsock = map[syscall.Errno]syscall.Errno{}
