"""Paired timing for `sightline bench infer`: the reference runtime is timed in short blocks of
calls, in alternation with blocks of Sightline's own calls, so both see the same stretch of a
noisy machine.

A script that takes RUNS accepts the word `paired` in its place and then calls serve(): it prints
{"ready": true} once its warm-up is done, and answers every line N read from stdin with the times
of N calls made back to back, in milliseconds, on one line. It exits when stdin closes.
"""
import json
import sys
import time


def serve(run):
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        times = []
        for _ in range(max(1, int(line))):
            start = time.perf_counter()
            run()
            times.append((time.perf_counter() - start) * 1000)
        print(" ".join(f"{t:.6f}" for t in times), flush=True)
