//go:build !linux && !darwin

package main

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestServerSaysItNeedsLinuxMacOSOrWSL(t *testing.T) {
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0"}, nil, io.Discard, io.Discard)
	assert.ErrorIs(t, err, errNeedsUnix)
	assert.Contains(t, explain(err), "it needs Linux, macOS or WSL")
}

func TestLoadGeneratorSaysItNeedsLinuxMacOSOrWSL(t *testing.T) {
	err := run(context.Background(), []string{"-client", "-conns", "2"}, nil, io.Discard, io.Discard)
	assert.ErrorIs(t, err, errNeedsUnix)
}
