#!/usr/bin/env python3
"""onnxruntime's raw outputs of the three PP-OCR models on fixed synthetic inputs, summarised
(shape, sum, sum of squares, 32 sampled values) for Sightline's agreement test.

The inputs are patterns both sides compute exactly: x[i] = ((i·7919) mod 255)/255 − 0.5, and for
the detector bands of short dark bars on a light page (so its output is not all zero).
Usage: python3 Scripts/reference/ocr_raw_reference.py DET.onnx REC.onnx CLS.onnx > ocr-raw.json
"""
import json
import sys

import numpy as np
import onnxruntime as ort

CASES = [("det", 0, [1, 3, 96, 160]), ("rec", 1, [2, 3, 48, 160]), ("cls", 2, [1, 3, 48, 192])]


def pattern(shape, name):
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.int64)
    if name == "det":
        # Dark text-like strokes on a light page: bands of short bars.
        w = shape[3]
        row, col = (i // w) % shape[2], i % w
        ink = ((row // 8) % 3 == 1) & ((col // 3) % 4 != 0) & (col > 16) & (col < w - 16)
        return np.where(ink, np.float32(-0.9), np.float32(0.9)).astype(np.float32).reshape(shape)
    return (((i * 7919) % 255).astype(np.float32) / np.float32(255) - np.float32(0.5)).reshape(shape)


def main():
    paths = sys.argv[1:4]
    out = {}
    for name, index, shape in CASES:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(paths[index], options, providers=["CPUExecutionProvider"])
        y = session.run(None, {session.get_inputs()[0].name: pattern(shape, name)})[0].astype(np.float64)
        flat = y.reshape(-1)
        picks = np.linspace(0, flat.size - 1, 32).astype(np.int64)
        out[name] = {"input": shape, "shape": list(y.shape), "sum": float(flat.sum()), "sq": float((flat ** 2).sum()),
                     "picks": [[int(p), float(flat[p])] for p in picks]}
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
