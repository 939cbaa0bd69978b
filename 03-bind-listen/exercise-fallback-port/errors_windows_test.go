package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"golang.org/x/sys/windows"
)

func TestWinsockNumbersAreWindowsOwn(t *testing.T) {
	assert.Equal(t, windows.WSAEADDRINUSE, wsaEADDRINUSE)
	assert.Equal(t, windows.WSAEADDRNOTAVAIL, wsaEADDRNOTAVAIL)
}
