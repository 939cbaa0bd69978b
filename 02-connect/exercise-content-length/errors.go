// The errors of this program, each turned into one line that says
// what happened and what to do.

package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// explain turns an error into the one line a learner sees.
func explain(err error) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("%v: the host name could not be resolved (see docs/errors.md#no-such-host)", err)
	case isErrno(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("%v: nothing listens on that port (see docs/errors.md#econnrefused)", err)
	case isErrno(err, syscall.ECONNRESET):
		return fmt.Sprintf("%v: the server aborted the connection (see docs/errors.md#econnreset)", err)
	case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return fmt.Sprintf("%v: no answer within -timeout (see docs/errors.md#timeout)", err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("%v (see docs/errors.md#eof)", err)
	}
	return err.Error()
}
