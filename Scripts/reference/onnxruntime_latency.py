#!/usr/bin/env python3
"""Median onnxruntime latency for a model and input shape: what `sightline bench infer`
compares against in the same run. Prints one JSON line: {"median_ms": ..., "runs": ...}.
With RUNS `paired`, answers each line N on stdin with the times of N calls instead (paired_runs.py).

Usage: python3 Scripts/reference/onnxruntime_latency.py MODEL.onnx SHAPE THREADS RUNS|paired
       (SHAPE like 1,224,224,3)
"""
import json
import sys
import time

import numpy as np
import onnxruntime as ort

model, shape, threads, runs = sys.argv[1], [int(v) for v in sys.argv[2].split(",")], int(sys.argv[3]), sys.argv[4]
options = ort.SessionOptions()
options.intra_op_num_threads = threads
options.inter_op_num_threads = 1
session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
name = session.get_inputs()[0].name
data = np.random.default_rng(0).uniform(-100, 100, size=shape).astype(np.float32)
for _ in range(3):
    session.run(None, {name: data})
if runs == "paired":
    from paired_runs import serve
    serve(lambda: session.run(None, {name: data}))
    sys.exit(0)
runs = int(runs)
times = []
for _ in range(runs):
    start = time.perf_counter()
    session.run(None, {name: data})
    times.append((time.perf_counter() - start) * 1000)
times.sort()
print(json.dumps({"median_ms": times[len(times) // 2], "min_ms": times[0], "runs": runs, "onnxruntime": ort.__version__}))
