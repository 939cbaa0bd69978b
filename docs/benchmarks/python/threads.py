"""A thread per client: the articles' first concurrent server, in Python.

Speaks the protocol of lessons 05-07: one greeting line on connect, then
b"OK..." followed by every chunk received. Run it as

    python3 threads.py PORT        (PORT 0 picks a free port)

The first line it prints is "listening on HOST:PORT". The benchmark
driver in docs/benchmarks starts it, loads it, and stops it with SIGTERM.
"""

import signal
import socket
import sys
import threading

GREETING = b"welcome to py-threads: every message you send comes back after OK...\n"


def serve_client(conn):
    # One blocking conversation; the thread ends when the client leaves.
    with conn:
        try:
            conn.sendall(GREETING)
            while True:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                conn.sendall(b"OK..." + chunk)
        except OSError:
            # A reset or a broken pipe ends this client only.
            return


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Small stacks: ten thousand threads must fit in memory.
    threading.stack_size(256 * 1024)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(4096)
    host, port = listener.getsockname()
    print(f"listening on {host}:{port}", flush=True)
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve_client, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
