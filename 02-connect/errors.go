// The errors of 02-connect, each turned into one line that says which
// step failed and what to do.

package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// explain turns an error into the one line a learner sees, pointing to
// the entry in docs/errors.md that says what happened and what to do.
func explain(err error) string {
	var dnsErr *net.DNSError
	switch {
	// A *net.DNSError comes first: a resolver that timed out is a
	// resolving problem, not a slow web server.
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return fmt.Sprintf("%v: the name does not exist; check the spelling of -host (see docs/errors.md#no-such-host)", err)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("%v: the host name could not be resolved; is the network up? (see docs/errors.md#no-such-host)", err)
	case isErrno(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("%v: nothing listens on that port; check -port, or start the server (see docs/errors.md#econnrefused)", err)
	case isErrno(err, syscall.ECONNRESET):
		return fmt.Sprintf("%v: the server aborted the connection (see docs/errors.md#econnreset)", err)
	case isTimeout(err):
		return fmt.Sprintf("%v: no answer within -timeout; the host may be down or a firewall may drop the packets (see docs/errors.md#timeout)", err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("%v (see docs/errors.md#eof)", err)
	case errors.Is(err, errNotHTTP), errors.Is(err, errHeadTooLarge):
		return fmt.Sprintf("%v: is a web server listening on that port?", err)
	}
	return err.Error()
}

// isTimeout reports a deadline that passed. A read or write deadline
// gives os.ErrDeadlineExceeded, but a dial that gives up may not: when
// its context's time runs out first, the error only answers true to
// Timeout, the one method of net.Error that is not deprecated. So both
// are checked.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}
