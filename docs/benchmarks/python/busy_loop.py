"""The busy-polling loop: the articles' first non-blocking server, in Python.

Every socket is non-blocking and the loop never waits: it tries to accept,
then tries recv on every client, over and over. It works, and it burns a
whole core even when no client says anything: that cost is the lesson.
Speaks the protocol of lessons 05-07. Run it as

    python3 busy_loop.py PORT        (PORT 0 picks a free port)
"""

import signal
import socket
import sys

GREETING = b"welcome to py-busy: every message you send comes back after OK...\n"


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(4096)
    listener.setblocking(False)
    host, port = listener.getsockname()
    print(f"listening on {host}:{port}", flush=True)

    # clients maps each socket to the reply bytes not yet sent.
    clients = {}
    while True:
        try:
            conn, _ = listener.accept()
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            clients[conn] = GREETING
        except BlockingIOError:
            pass
        for conn in list(clients):
            try:
                if clients[conn]:
                    sent = conn.send(clients[conn])
                    clients[conn] = clients[conn][sent:]
                    continue
                chunk = conn.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                del clients[conn]
                conn.close()
                continue
            clients[conn] = b"OK..." + chunk


if __name__ == "__main__":
    main()
