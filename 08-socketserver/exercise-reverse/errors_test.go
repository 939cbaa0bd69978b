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
	// "-addr 9008" is a port alone: the error says how to write it.
	err := run(context.Background(), []string{"-addr", "9008"}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Equal(t, "listen on 9008: address 9008: missing port in address (write host:port, e.g. 127.0.0.1:9008 or :9008)", explain(err))
}
