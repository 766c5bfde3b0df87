#!/usr/bin/env python3
"""Reference outputs for Sightline's model tests, computed with onnxruntime (PyPI).

For each photo: decode with the ffmpeg CLI to packed RGB at native size (the same libavcodec
our decoder uses, so pixels are identical), preprocess exactly as Sightline's
ImagePreprocessing does (bilinear resize with half-pixel centres in float32, centre crop,
channel order, mean/scale), run the model with onnxruntime, and write the outputs as JSON.

Usage: python3 Scripts/reference/onnx_reference.py MODEL.onnx PHOTO... > outputs.json
Needs: numpy, onnxruntime, the ffmpeg CLI.
"""
import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort

RESIZE, CROP = 256, 224
MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)


def decode_rgb(path):
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height", "-of", "csv=p=0", path], capture_output=True, text=True, check=True)
    width, height = (int(v) for v in probe.stdout.strip().split(","))
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)


def resize_bilinear(img, ow, oh):
    """Same arithmetic, in float32, as SightlineKernels.resizeBilinear."""
    h, w, _ = img.shape
    sx, sy = np.float32(w) / np.float32(ow), np.float32(h) / np.float32(oh)
    out = np.empty((oh, ow, 3), dtype=np.float32)
    src = img.astype(np.float32)
    for oy in range(oh):
        fy = max(np.float32(0), (np.float32(oy) + np.float32(0.5)) * sy - np.float32(0.5))
        y0 = min(int(fy), h - 1); y1 = min(y0 + 1, h - 1); wy = np.float32(fy - np.float32(y0))
        fx = np.maximum(np.float32(0), (np.arange(ow, dtype=np.float32) + np.float32(0.5)) * sx - np.float32(0.5)).astype(np.float32)
        x0 = np.minimum(fx.astype(np.int64), w - 1); x1 = np.minimum(x0 + 1, w - 1); wx = (fx - x0.astype(np.float32))[:, None]
        a, b, d, e = src[y0, x0], src[y0, x1], src[y1, x0], src[y1, x1]
        top = a + (b - a) * wx
        bottom = d + (e - d) * wx
        out[oy] = top + (bottom - top) * wy
    return out


def nsfw_input(img):
    resized = resize_bilinear(img, RESIZE, RESIZE)
    o = (RESIZE - CROP) // 2
    crop = resized[o:o + CROP, o:o + CROP, :]
    return (crop[:, :, ::-1] - MEAN_BGR).astype(np.float32)[None]


def main():
    model, photos = sys.argv[1], sys.argv[2:]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    results = {}
    for photo in photos:
        output = session.run(None, {name: nsfw_input(decode_rgb(photo))})[0]
        results[photo.split("/")[-1]] = [float(v) for v in output.reshape(-1)]
    json.dump({"model": model.split("/")[-1], "onnxruntime": ort.__version__, "outputs": results}, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
