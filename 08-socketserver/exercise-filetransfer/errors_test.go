//go:build exercise || solution

package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAddressWithoutAHostGetsAHint(t *testing.T) {
	// "-addr 9008" is a port alone: the error says how to write it.
	// Refused before anything is made: the directory is not created.
	dir := filepath.Join(os.TempDir(), "socketsteps-never-created")
	err := run(context.Background(), []string{"-dir", dir, "-addr", "9008"}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.NoDirExists(t, dir)
	assert.Equal(t, "listen on 9008: address 9008: missing port in address (write host:port, e.g. 127.0.0.1:9008 or :9008)", explain(err))
}

func TestSenderAddressWithoutAHostGetsAHint(t *testing.T) {
	// Refused before the file is even opened.
	err := run(context.Background(), []string{"-send", "no-such-file.txt", "-addr", "9008"}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Equal(t, "connect to 9008: address 9008: missing port in address (write host:port, e.g. 127.0.0.1:9008 or :9008)", explain(err))
}
