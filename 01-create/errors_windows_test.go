package main

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"golang.org/x/sys/windows"
)

// Winsock reports its own numbers, and explain knows them as well as the
// Unix ones (TestExplainPointsToTheCatalogue).
func TestExplainKnowsWinsocksNumbers(t *testing.T) {
	for _, c := range []struct {
		err    syscall.Errno
		anchor string
	}{
		{windows.WSAEAFNOSUPPORT, "eafnosupport"},
		{windows.WSAEACCES, "eacces"},
		{windows.WSAEMFILE, "emfile"},
	} {
		wrapped := fmt.Errorf("socket(AF_INET, SOCK_RAW, IPPROTO_ICMP): %w", c.err)
		assert.Contains(t, explain(wrapped), "(see docs/errors.md#"+c.anchor+")", "%v", c.err)
	}
}
