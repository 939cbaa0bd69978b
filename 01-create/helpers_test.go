package main

// The machinery of the tests of this lesson.

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// wait bounds every blocking step of a test, so a broken program fails
// the test instead of hanging it.
const wait = 5 * time.Second

// mustSocket creates a socket for one test and closes it afterwards.
func mustSocket(t *testing.T, family, typ int) sock {
	t.Helper()
	s, err := newSocket(family, typ, 0)
	require.NoError(t, err)
	t.Cleanup(func() { closeSocket(s) })
	return s
}
