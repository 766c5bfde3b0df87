#!/usr/bin/env python3
"""Median LiteRT latency for a TFLite model: what `sightline bench infer face-full|face-short|person`
compares against in the same run. LiteRT (ai-edge-litert, TensorFlow Lite's runtime) uses its
default CPU path, the XNNPACK delegate, with THREADS threads. Prints one JSON line:
{"median_ms": ..., "runs": ...}.

With RUNS `paired`, answers each line N on stdin with the times of N calls instead (paired_runs.py).

Usage: python3 Scripts/reference/litert_latency.py MODEL.tflite SHAPE THREADS RUNS|paired
       (SHAPE like 1,128,128,3)
Needs: pip install ai-edge-litert==2.3.0 numpy
"""
import json
import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter

model, shape, threads, runs = sys.argv[1], [int(v) for v in sys.argv[2].split(",")], int(sys.argv[3]), sys.argv[4]
interpreter = Interpreter(model_path=model, num_threads=threads)
index = interpreter.get_input_details()[0]["index"]
if list(interpreter.get_input_details()[0]["shape"]) != shape:
    interpreter.resize_tensor_input(index, shape)
interpreter.allocate_tensors()
data = np.random.default_rng(0).uniform(-1, 1, size=shape).astype(np.float32)


def call():
    interpreter.set_tensor(index, data)
    interpreter.invoke()


for _ in range(3):
    call()
if runs == "paired":
    from paired_runs import serve
    serve(call)
    sys.exit(0)
runs = int(runs)
times = []
for _ in range(runs):
    start = time.perf_counter()
    interpreter.set_tensor(index, data)
    interpreter.invoke()
    times.append((time.perf_counter() - start) * 1000)
times.sort()
print(json.dumps({"median_ms": times[len(times) // 2], "min_ms": times[0], "runs": runs}))
