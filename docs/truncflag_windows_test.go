package docs

// msgTrunc is unused on Windows, where a datagram that does not fit into
// the buffer is an error (WSAEMSGSIZE) rather than a flag.
const msgTrunc = 0
