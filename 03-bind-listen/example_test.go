package main

import "fmt"

// checkHostPort catches an -addr without a host before any socket is
// made, and says how to write it.
func Example_checkHostPort() {
	for _, addr := range []string{"127.0.0.1:9003", ":9003", "9003"} {
		fmt.Println(addr, checkHostPort(addr))
	}
	// Output:
	// 127.0.0.1:9003 <nil>
	// :9003 <nil>
	// 9003 address 9003: missing port in address (write host:port, e.g. 127.0.0.1:9003 or :9003)
}
