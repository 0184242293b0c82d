#!/usr/bin/env python3
"""HTTPS timings for scripts/bench.sh: commands run in alternation (A B C D, B C D A, ...), so a
busy moment of the shared machine costs every command alike, and the physical floor of a call.

    bench-https.py OUT.json RUNS URL CA.pem BODY.json NAME=JSON-ARGV...

Each NAME=JSON-ARGV is a command (a JSON list; `{"env": {...}, "argv": [...]}` adds variables).
The floor is measured in this process with a minimal client: TCP connect, TLS 1.3 handshake
verifying the server against CA.pem, one POST of BODY.json, the response read, close; one per round,
alternated with the commands. OUT.json holds hyperfine's shape: results[].command, .median (s),
plus .cpu_median (s): user + system time of the command (of this process for the floor), which a
busy machine inflates far less than the wall time.
"""

import json
import os
import resource
import socket
import ssl
import statistics
import subprocess
import sys
import time
from urllib.parse import urlsplit


def handshake_and_post(host, port, context, request):
    with socket.create_connection((host, port)) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(request)
            tls.recv(4096)


def main():
    out, runs, url, ca, body_path = sys.argv[1:6]
    runs = int(runs)
    commands = []
    for spec in sys.argv[6:]:
        name, value = spec.split("=", 1)
        value = json.loads(value)
        if isinstance(value, list):
            value = {"argv": value}
        commands.append((name, value["argv"], {**os.environ, **value.get("env", {})}))

    parts = urlsplit(url)
    host, port = parts.hostname, parts.port
    body = open(body_path, "rb").read()
    request = (
        f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    context = ssl.create_default_context(cafile=ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_3

    def floor():
        handshake_and_post(host, port, context, request)

    def run(argv, env):
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)

    jobs = [(name, resource.RUSAGE_CHILDREN, lambda argv=argv, env=env: run(argv, env))
            for name, argv, env in commands]
    jobs.append(("floor-tls13-in-process", resource.RUSAGE_SELF, floor))
    times = {name: [] for name, _, _ in jobs}
    cpu = {name: [] for name, _, _ in jobs}
    for round_ in range(-3, runs):  # three warm-up rounds
        shift = round_ % len(jobs)
        for name, who, job in jobs[shift:] + jobs[:shift]:
            before = resource.getrusage(who)
            start = time.perf_counter_ns()
            job()
            took = time.perf_counter_ns() - start
            after = resource.getrusage(who)
            if round_ >= 0:
                times[name].append(took / 1e9)
                cpu[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    results = [{"command": name, "median": statistics.median(t), "cpu_median": statistics.median(cpu[name]),
                "user": 0.0, "system": 0.0, "times": t} for name, t in times.items()]
    json.dump({"results": results}, open(out, "w"))
    for r in results:
        print(f"  {r['command']:<28} median {r['median'] * 1000:.2f} ms, CPU {r['cpu_median'] * 1000:.2f} ms"
              f" over {len(r['times'])} runs", file=sys.stderr)


if __name__ == "__main__":
    main()
