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
	// "-addr 9006" is a port alone: the error says how to write it.
	err := run(context.Background(), []string{"-addr", "9006"}, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Equal(t, "listen on 9006: address 9006: missing port in address (write host:port, e.g. 127.0.0.1:9006 or :9006)", explain(err))
}
