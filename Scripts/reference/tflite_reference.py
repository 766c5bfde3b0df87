#!/usr/bin/env python3
"""Reference outputs for Sightline's TFLite loader and MediaPipe detectors.

For each image (photos, and frames of the sample videos, decoded by the ffmpeg CLI to packed
RGB, as our decoder does): letterbox it into each detector's square input exactly as
SightlineModels' BlazeDetector.input does (float32 arithmetic, black borders, [-1, 1]), run the
TFLite file with LiteRT (ai-edge-litert, PyPI), and record
  - a sample of the raw outputs (the 16 highest-scoring anchors and every 97th one), so the
    engine's outputs can be compared number by number;
  - the detections decoded from them as MediaPipe's graphs do (anchors, sigmoid scores, weighted
    NMS, letterbox removal), written here independently of the Swift code;
  - for faces, the detections of MediaPipe itself (mediapipe.solutions.face_detection, the
    library's own graph), the reference the issue names.

Usage:
  python3 Scripts/reference/tflite_reference.py MODELS_DIR IMAGE_OR_VIDEO[@SECONDS]... > mediapipe-reference.json
MODELS_DIR holds the .tflite files from the mediapipe==0.10.14 wheel (sightline models fetch
mediapipe-detectors puts them in the model cache under longer names; pass them with --file).
Needs: numpy, ai-edge-litert==2.3.0, mediapipe==0.10.14 (in a venv of its own: it pins numpy
and protobuf), the ffmpeg CLI.
"""
import argparse
import json
import math
import subprocess
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter

GRAPHS = {
    # name: (file, input size, strides, interpolated ratio, coordinates, keypoints, min score, boxes output, scores output)
    "face-short": ("face_detection_short_range.tflite", 128, [8, 16, 16, 16], 1.0, 16, 6, 0.5, "regressors", "classificators"),
    "face-full": ("face_detection_full_range_sparse.tflite", 192, [4], 0.0, 16, 6, 0.6, "Identity", "Identity_1"),
    "person": ("pose_detection.tflite", 224, [8, 16, 32, 32, 32], 1.0, 12, 4, 0.2, "Identity", "Identity_1"),
}


def decode_rgb(spec):
    path, _, seconds = spec.partition("@")
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
                            "-of", "csv=p=0", path], capture_output=True, text=True, check=True)
    width, height = (int(v) for v in probe.stdout.strip().split(","))
    seek = ["-ss", seconds] if seconds else []
    raw = subprocess.run(["ffmpeg", "-v", "error"] + seek + ["-i", path, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)


def letterbox(img, s):
    """The frame centred in a square of side max(w, h), sampled bilinearly at s×s as OpenCV's
    warpPerspective samples (output pixel x reads corner + x·side/s; positions in 1/32 pixel; the
    result rounded to 8 bits); outside is black."""
    h, w, _ = img.shape
    f32 = np.float32
    side = f32(max(w, h))
    ox, oy = (f32(w) - side) / f32(2), (f32(h) - side) / f32(2)
    step = side / f32(s)
    src = img.astype(np.float32)
    out = np.zeros((s, s, 3), dtype=np.float32)
    def quantized(p):
        """OpenCV remap's positions: the whole pixel and the fraction in 1/32."""
        steps = int(round(float(p) * 32))
        whole = steps >> 5
        return whole, f32((steps - whole * 32) / 32)
    for y in range(s):
        y0, fy = quantized(f32(y) * step + oy)
        for x in range(s):
            x0, fx = quantized(f32(x) * step + ox)
            acc = np.zeros(3, dtype=np.float32)
            for dy, wy in ((0, f32(1) - fy), (1, fy)):
                if wy <= 0 or not 0 <= y0 + dy < h:
                    continue
                for dx, wx in ((0, f32(1) - fx), (1, fx)):
                    if wx <= 0 or not 0 <= x0 + dx < w:
                        continue
                    acc = acc + src[y0 + dy, x0 + dx] * f32(wy * wx)
            out[y, x] = np.round(acc) / f32(127.5) - f32(1)
    return out[None], -ox / side, -oy / side, side / f32(w), side / f32(h)


def anchors(size, strides, interpolated, min_scale=0.1484375, max_scale=0.75):
    """MediaPipe SsdAnchorsCalculator with fixed anchor size (centres only)."""
    def scale(i):
        return (min_scale + max_scale) / 2 if len(strides) == 1 else min_scale + (max_scale - min_scale) * i / (len(strides) - 1)
    out, layer = [], 0
    while layer < len(strides):
        per_cell, last = 0, layer
        while last < len(strides) and strides[last] == strides[layer]:
            per_cell += 1 + (1 if interpolated > 0 else 0)
            last += 1
        cells = math.ceil(size / strides[layer])
        for y in range(cells):
            for x in range(cells):
                out += [((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell
        layer = last
    return np.array(out, dtype=np.float32)


def iou(a, b):
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def decode(boxes, scores, anchor_centres, size, coords, keypoints, min_score):
    found = []
    for i, (ax, ay) in enumerate(anchor_centres):
        score = 1 / (1 + math.exp(-max(-100.0, min(100.0, float(scores[i])))))
        if score < min_score:
            continue
        b = boxes[i]
        cx, cy, w, h = b[0] / size + ax, b[1] / size + ay, b[2] / size, b[3] / size
        kps = [(b[4 + 2 * k] / size + ax, b[5 + 2 * k] / size + ay) for k in range(keypoints)]
        found.append([cx - w / 2, cy - h / 2, w, h, score, kps])
    found.sort(key=lambda d: -d[4])
    kept = []
    while found:
        best = found[0]
        group = [d for d in found if iou(best, d) > 0.3]
        found = [d for d in found if iou(best, d) <= 0.3]
        total = sum(d[4] for d in group)
        x0 = sum(d[0] * d[4] for d in group) / total
        y0 = sum(d[1] * d[4] for d in group) / total
        x1 = sum((d[0] + d[2]) * d[4] for d in group) / total
        y1 = sum((d[1] + d[3]) * d[4] for d in group) / total
        kps = [(sum(d[5][k][0] * d[4] for d in group) / total, sum(d[5][k][1] * d[4] for d in group) / total)
               for k in range(keypoints)]
        kept.append([x0, y0, x1 - x0, y1 - y0, best[4], kps])
    return kept


def mediapipe_faces(img):
    try:
        import mediapipe as mp
    except ImportError:
        return None
    result = {}
    for name, selection in (("face-short", 0), ("face-full", 1)):
        with mp.solutions.face_detection.FaceDetection(model_selection=selection, min_detection_confidence=0.5) as detector:
            found = detector.process(img).detections or []
        result[name] = [{"box": [d.location_data.relative_bounding_box.xmin, d.location_data.relative_bounding_box.ymin,
                                 d.location_data.relative_bounding_box.width, d.location_data.relative_bounding_box.height],
                         "score": float(d.score[0])} for d in found]
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--file", action="append", default=[], help="GRAPH=PATH of a .tflite file")
    parser.add_argument("images", nargs="+")
    args = parser.parse_args()
    files = dict(f.split("=", 1) for f in args.file)
    interpreters = {}
    for name, (file, *_rest) in GRAPHS.items():
        interpreter = Interpreter(model_path=files[name], num_threads=1)
        interpreter.allocate_tensors()
        interpreters[name] = interpreter
    results = {}
    for spec in args.images:
        img = decode_rgb(spec)
        key = spec.split("/")[-1]
        entry = {"width": img.shape[1], "height": img.shape[0], "graphs": {}}
        for name, (_, size, strides, interpolated, coords, keypoints, min_score, boxes_name, scores_name) in GRAPHS.items():
            tensor, left, top, scale_x, scale_y = letterbox(img, size)
            interpreter = interpreters[name]
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor)
            interpreter.invoke()
            outputs = {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
            boxes, scores = outputs[boxes_name][0], outputs[scores_name][0, :, 0]
            sample = sorted(set(np.argsort(-scores)[:16].tolist()) | set(range(0, len(scores), 97)))
            detections = decode(boxes, scores, anchors(size, strides, interpolated), size, coords, keypoints, min_score)
            for d in detections:
                d[0], d[1] = (d[0] - left) * scale_x, (d[1] - top) * scale_y
                d[2], d[3] = d[2] * scale_x, d[3] * scale_y
                d[5] = [((x - left) * scale_x, (y - top) * scale_y) for x, y in d[5]]
            entry["graphs"][name] = {
                "anchors": sample,
                "scores": [float(scores[i]) for i in sample],
                "boxes": [[float(v) for v in boxes[i]] for i in sample],
                "detections": [{"box": [float(v) for v in d[:4]], "score": float(d[4]),
                                "keypoints": [[float(x), float(y)] for x, y in d[5]]} for d in detections],
            }
        faces = mediapipe_faces(img)
        if faces is not None:
            entry["mediapipe"] = faces
        results[key] = entry
    import ai_edge_litert
    json.dump({"litert": getattr(ai_edge_litert, "__version__", "2.3.0"), "images": results}, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
