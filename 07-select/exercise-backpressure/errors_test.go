//go:build exercise || solution

package main

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAddressWithoutAHostGetsAHint(t *testing.T) {
	// "-addr 9007" is a port alone: the error says how to write it.
	err := run(context.Background(), []string{"-addr", "9007"}, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Equal(t, "listen on 9007: address 9007: missing port in address (write host:port, e.g. 127.0.0.1:9007 or :9007)", explain(err))
}

func TestFloodClientAddressWithoutAHostGetsAHint(t *testing.T) {
	err := run(context.Background(), []string{"-addr", "9007", "-flood", "10"}, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Equal(t, "connect to 9007: address 9007: missing port in address (write host:port, e.g. 127.0.0.1:9007 or :9007)", explain(err))
}
