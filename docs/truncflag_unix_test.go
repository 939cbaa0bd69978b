//go:build unix

package docs

import "syscall"

// msgTrunc is the flag a datagram read reports when the datagram did not
// fit into the buffer.
const msgTrunc = syscall.MSG_TRUNC
