package main

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEverySleepOfAThreadCountsAsAContextSwitch(t *testing.T) {
	before, err := contextSwitches(os.Getpid())
	require.NoError(t, err)
	// Each nanosleep puts this thread to sleep, which the kernel counts
	// as a voluntary switch, whichever thread of the process it is.
	for i := 0; i < 10; i++ {
		ts := syscall.NsecToTimespec(int64(time.Millisecond))
		require.NoError(t, syscall.Nanosleep(&ts, nil))
	}
	after, err := contextSwitches(os.Getpid())
	require.NoError(t, err)
	assert.GreaterOrEqual(t, after-before, int64(10))
}
