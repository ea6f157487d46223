#!/usr/bin/env python3
"""tests/bench/keepalive.py: the memory a kept-alive client connection holds in signbridge after
one request (issue 8, target 6's memory per connection).

    tests/bench/keepalive.py [--bin-dir DIR] [--connections N] [--rounds R] [--smoke]

Starts the sandbox and signbridge from DIR (default build-release; SIGNBRIDGE_BIN and SANDBOX_BIN
win when both are set), opens N connections (default 5,000) to signbridge, sends one
GET /healthz on each with the headers of a typical client (~550 bytes) and reads each answer,
leaving every connection open, then reads signbridge's VmRSS 1 s later. Prints, per round,
    bench keepalive: N connections kept alive after one request each: RSS A -> B MiB, K KiB per connection
and the median of the rounds. A connection's memory is libmicrohttpd's connection and its pool
(limits.max_header_bytes, 12 KiB by default), of which the lean build's libmicrohttpd keeps only
what was written resident (scripts/lean-deps-patches/libmicrohttpd-pool-zero-written.patch).
--smoke: 200 connections, one round (the test suite runs it to prove the script works).
Ends with "N passed, N failed"; the checks are that every answer was 200, not a threshold.
"""
import argparse
import os
import resource
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def vm_rss_kb(br):
    return int(br.status_field("VmRSS").split()[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build-release"))
    ap.add_argument("--connections", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    n = a.connections or (200 if a.smoke else 5000)
    rounds = a.rounds or (1 if a.smoke else 3)
    if n < 1 or rounds < 1:
        print("keepalive.py: --connections and --rounds take a number >= 1", file=sys.stderr)
        return 2
    if not (os.environ.get("SIGNBRIDGE_BIN") and os.environ.get("SANDBOX_BIN")):
        os.environ["SIGNBRIDGE_BIN"] = os.path.join(os.path.abspath(a.bin_dir), "signbridge")
        os.environ["SANDBOX_BIN"] = os.path.join(os.path.abspath(a.bin_dir), "signbridge-sandbox")
    sb_bin, sbx_bin = os.environ["SIGNBRIDGE_BIN"], os.environ["SANDBOX_BIN"]
    # the test library's process helpers read the two variables when imported
    sys.path.insert(0, os.path.join(HERE, "..", "upstream"))
    import uptest  # noqa: E402
    passed = failed = 0

    def ok(what):
        nonlocal passed
        print("ok - " + what)
        passed += 1

    def nok(what, why):
        nonlocal failed
        print("not ok - %s: %s" % (what, why))
        failed += 1

    for b in (sb_bin, sbx_bin):
        if not os.access(b, os.X_OK):
            nok("binaries", "%s is not executable (build it, or pass --bin-dir)" % b)
            print("%d passed, %d failed" % (passed, failed))
            return 1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 256
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
        except (ValueError, OSError):
            pass
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < want:
        nok("file descriptors", "RLIMIT_NOFILE below %d" % want)
        print("%d passed, %d failed" % (passed, failed))
        return 1
    # a typical client's request head: the size of what a pool holds after one request
    req = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: keepalive-bench/1.0\r\n"
           b"Accept: application/json, text/event-stream\r\nAccept-Encoding: gzip, deflate\r\n"
           b"Connection: keep-alive\r\nX-Request-Padding: " + b"p" * 360 + b"\r\n\r\n")
    figures = []
    sbx = uptest.Sandbox(["--no-rate-limits"])
    try:
        try:
            sbx.start()
        except RuntimeError as e:
            nok("sandbox starts", str(e)[:300])
            print("%d passed, %d failed" % (passed, failed))
            return 1
        for r in range(rounds):
            br = uptest.Bridge(sbx, env={"SIGNBRIDGE_LOG_LEVEL": "warn"})
            try:
                br.start()
            except RuntimeError as e:
                nok("signbridge starts (round %d)" % (r + 1), str(e)[:300])
                break
            socks, good = [], 0
            try:
                time.sleep(0.5)
                r0 = vm_rss_kb(br)
                for _ in range(n):
                    socks.append(socket.create_connection(("127.0.0.1", br.port), timeout=20))
                for s in socks:
                    s.sendall(req)
                for s in socks:
                    d = b""
                    while b"\r\n\r\n" not in d:
                        c = s.recv(65536)
                        if not c:
                            break
                        d += c
                    if d.startswith(b"HTTP/1.1 200"):
                        good += 1
                time.sleep(1.0)
                r1 = vm_rss_kb(br)
            finally:
                for s in socks:
                    s.close()
                br.kill()
            per = (r1 - r0) / float(n)
            figures.append(per)
            print("bench keepalive: %d connections kept alive after one request each: RSS %.1f "
                  "-> %.1f MiB, %.2f KiB per connection" % (n, r0 / 1024.0, r1 / 1024.0, per))
            if good == n:
                ok("round %d: all %d answers 200" % (r + 1, n))
            else:
                nok("round %d: all %d answers 200" % (r + 1, n), "%d were" % good)
    finally:
        sbx.kill()
    if figures:
        figures.sort()
        print("bench keepalive: median of %d rounds: %.2f KiB per kept-alive connection (%s)"
              % (len(figures), figures[(len(figures) - 1) // 2], sb_bin))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
