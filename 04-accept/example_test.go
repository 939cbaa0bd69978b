package main

import "fmt"

// checkHostPort catches an -addr without a host before any socket is
// made, and says how to write it.
func Example_checkHostPort() {
	for _, addr := range []string{"127.0.0.1:9004", ":9004", "9004"} {
		fmt.Println(addr, checkHostPort(addr))
	}
	// Output:
	// 127.0.0.1:9004 <nil>
	// :9004 <nil>
	// 9004 address 9004: missing port in address (write host:port, e.g. 127.0.0.1:9004 or :9004)
}
