"""One thread and a selectors loop: the articles' second design, in Python.

Speaks the protocol of lessons 05-07: one greeting line on connect, then
b"OK..." followed by every chunk received. selectors.DefaultSelector is
epoll on Linux and kqueue on macOS. Run it as

    python3 selectors_loop.py PORT   (PORT 0 picks a free port)
"""

import selectors
import signal
import socket
import sys

GREETING = b"welcome to py-selectors: every message you send comes back after OK...\n"


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sel = selectors.DefaultSelector()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(4096)
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ, None)
    host, port = listener.getsockname()
    print(f"listening on {host}:{port}", flush=True)

    # pending holds, per client, the reply bytes the kernel has not taken
    # yet. While a client has pending bytes we wait for it to be writable
    # and do not read from it, so its memory stays bounded.
    pending = {}

    def close(conn):
        sel.unregister(conn)
        pending.pop(conn, None)
        conn.close()

    def send(conn, data):
        try:
            sent = conn.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            close(conn)
            return
        rest = data[sent:]
        if rest:
            pending[conn] = rest
            sel.modify(conn, selectors.EVENT_WRITE)
        else:
            pending.pop(conn, None)
            sel.modify(conn, selectors.EVENT_READ)

    while True:
        for key, events in sel.select():
            sock = key.fileobj
            if sock is listener:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sel.register(conn, selectors.EVENT_READ)
                send(conn, GREETING)
            elif events & selectors.EVENT_WRITE:
                send(sock, pending[sock])
            else:
                try:
                    chunk = sock.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    close(sock)
                    continue
                if not chunk:
                    close(sock)
                    continue
                send(sock, b"OK..." + chunk)


if __name__ == "__main__":
    main()
