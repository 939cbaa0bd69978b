package main

import (
	"os"

	"golang.org/x/sys/windows"
)

// isTerminal reports whether f is a console that understands the ANSI
// sequences the watch screen uses. Windows 10 and later do, once asked:
// a console that refuses is treated as no terminal (no colour, no redraw).
func isTerminal(f *os.File) bool {
	h := windows.Handle(f.Fd())
	var mode uint32
	if err := windows.GetConsoleMode(h, &mode); err != nil {
		return false
	}
	if mode&windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING != 0 {
		return true
	}
	return windows.SetConsoleMode(h, mode|windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING) == nil
}
