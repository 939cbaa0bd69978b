package docs

import "syscall"

func errConnRefused() error { return syscall.Errno(10061) }
