#!/usr/bin/env python3
"""forward.py LISTEN_ADDR:PORT TO_ADDR:PORT: a TCP forwarder, one thread per connection.

In the live dashboard test's guest it joins QEMU's forwarded port (on the guest's NIC)
to the monitor, which serves only on the loopback address.
"""
import socket, sys, threading

def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

def addr(s):
    h, p = s.rsplit(":", 1)
    return h, int(p)

listen, to = addr(sys.argv[1]), addr(sys.argv[2])
srv = socket.create_server(listen, reuse_port=False)
while True:
    c, _ = srv.accept()
    try:
        u = socket.create_connection(to, timeout=10)
    except OSError:
        c.close()
        continue
    u.settimeout(None)
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
