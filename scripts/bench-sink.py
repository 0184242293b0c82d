#!/usr/bin/env python3
"""Local endpoints for scripts/bench.sh, all on 127.0.0.1.

- an HTTP sink (threaded) that answers every POST with 200 `{}`; GET /count returns how many POSTs
  it got and GET /last the last body, so curl can be fed the exact bytes install-beacon sends;
- a black hole that accepts connections and never answers;
- a port nothing listens on (bound, then closed), for refused connections;
- a port that drops every SYN, as a firewall does (a backlog of 0 filled by one connection that is
  never accepted).

HTTPS is nginx's part (bench.sh starts it). Writes {"http": port, "blackhole": port, "syndrop": port,
"refused": port} to the file given as first argument once everything listens, then serves until
killed.
"""

import json
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    lock = threading.Lock()
    posts = 0
    last = b"{}"


class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        with State.lock:
            State.posts += 1
            State.last = body
        self.reply(b"{}")

    def do_GET(self):
        with State.lock:
            body = str(State.posts).encode() if self.path == "/count" else State.last
        self.reply(body)

    def reply(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def black_hole(listener):
    def hold(conn):
        with conn:
            while conn.recv(65536):
                pass

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=hold, args=(conn,), daemon=True).start()


def main():
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 128
    http = ThreadingHTTPServer(("127.0.0.1", 0), Sink)

    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(128)
    threading.Thread(target=black_hole, args=(hole,), daemon=True).start()

    syndrop = socket.socket()
    syndrop.bind(("127.0.0.1", 0))
    syndrop.listen(0)
    filler = socket.create_connection(syndrop.getsockname())

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    refused = probe.getsockname()[1]
    probe.close()

    ports = {
        "http": http.server_address[1],
        "blackhole": hole.getsockname()[1],
        "syndrop": syndrop.getsockname()[1],
        "refused": refused,
    }
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(ports, f)
    os.replace(tmp, sys.argv[1])
    http.serve_forever()


if __name__ == "__main__":
    main()
