package main

import (
	"fmt"
	"os"
	"time"
)

// An address without a host is the most common slip on the command line:
// checkHostPort says so, with the form to write instead.
func Example_checkHostPort() {
	fmt.Println(checkHostPort("127.0.0.1:9005"))
	fmt.Println(checkHostPort("9005"))
	// Output:
	// <nil>
	// address 9005: missing port in address (write host:port, e.g. 127.0.0.1:9005 or :9005)
}

// A logQueue is an io.Writer that never blocks its caller. close writes
// what is still queued, waiting no longer than the deadline it is given.
func Example_logQueue() {
	log := newLogQueue(os.Stdout)
	fmt.Fprintln(log, "client 127.0.0.1:52814 connected")
	fmt.Fprintln(log, "client 127.0.0.1:52814 left")
	log.close(time.Now().Add(time.Second))
	// Output:
	// client 127.0.0.1:52814 connected
	// client 127.0.0.1:52814 left
}
