//go:build !linux

package main

import "errors"

// bindToDevice: SO_BINDTODEVICE is Linux's. macOS ties a socket to an
// interface with IP_BOUND_IF, Windows with IP_UNICAST_IF, both by index.
func bindToDevice(s sock) (string, error) {
	return "", errors.New("not on this platform (it is Linux's)")
}
