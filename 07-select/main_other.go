//go:build !linux && !darwin

package main

import (
	"context"
	"errors"
	"io"
)

// This lesson calls the operating system's readiness APIs (poll, epoll,
// kqueue) through golang.org/x/sys/unix. Windows has a different model
// (I/O completion ports), so here the server and the load generator only
// explain that; the interactive -client, which uses the net package,
// still works.
var errNeedsUnix = errors.New("07-select works with Unix file descriptors (poll, epoll, kqueue): it needs Linux, macOS or WSL")

func defaultPoller() string { return "" }
func pollerNames() []string { return nil }

func serve(context.Context, config, io.Writer) error       { return errNeedsUnix }
func loadgen(context.Context, loadConfig, io.Writer) error { return errNeedsUnix }
