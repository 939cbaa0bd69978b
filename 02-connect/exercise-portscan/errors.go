// The errors of this program, each turned into one line that says
// what happened and what to do.

package main

import (
	"errors"
	"fmt"
)

// explain turns an error into the one line a learner sees.
func explain(err error) string {
	if errors.Is(err, errNotLoopback) {
		return fmt.Sprintf("%v: this scanner only scans this machine (127.0.0.0/8 or ::1)", err)
	}
	return err.Error()
}
