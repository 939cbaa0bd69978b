package main

import (
	"fmt"
	"log"
	"os"
	"time"
)

// checkHostPort says how to write an address that is not host:port,
// before any socket is made.
func Example_checkHostPort() {
	fmt.Println(checkHostPort("127.0.0.1:9006"))
	fmt.Println(checkHostPort(":9006"))
	fmt.Println(checkHostPort("9006"))
	// Output:
	// <nil>
	// <nil>
	// address 9006: missing port in address (write host:port, e.g. 127.0.0.1:9006 or :9006)
}

// A logQueue goes between a log.Logger and stdout: logging never waits
// for stdout, and close writes out what is queued, waiting no longer
// than its deadline.
func Example_logQueue() {
	logs := newLogQueue(os.Stdout)
	logger := log.New(logs, "", 0)
	logger.Printf("listening on %s", "127.0.0.1:9006")
	logger.Printf("stopped")
	logs.close(time.Now().Add(time.Second))
	// Output:
	// listening on 127.0.0.1:9006
	// stopped
}
