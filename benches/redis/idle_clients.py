#!/usr/bin/env python3
"""Holds COUNT idle client connections open to a Redis-compatible server, for
benches/redis.sh's memory per idle client:

    idle_clients.py HOST PORT COUNT

Each connection sends one PING and reads its +PONG (so that the server has accepted it and
set it up as it sets up any client), then stays idle. Prints `ready` once all COUNT have
their reply, and closes them all when its standard input ends.
"""

import socket
import sys


def main(host, port, count):
    connections = []
    for _ in range(count):
        connection = socket.create_connection((host, port), timeout=10)
        connection.sendall(b"PING\r\n")
        connections.append(connection)
    for connection in connections:
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = connection.recv(64)
            if not chunk:
                sys.exit("idle_clients.py: the server closed a connection")
            reply += chunk
        if reply != b"+PONG\r\n":
            sys.exit(f"idle_clients.py: unexpected reply {reply!r}")
    print("ready", flush=True)
    sys.stdin.read()
    for connection in connections:
        connection.close()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(f"usage: {sys.argv[0]} HOST PORT COUNT")
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
