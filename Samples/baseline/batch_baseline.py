#!/usr/bin/env python3
"""The batch job as a user's own Python glue would do it — the baseline `sightline bench batch`
measures Pipelines/batch.yaml against. Same job, same model files, same sampling:

  ffmpeg CLI decodes 2 frames/s (rgb24 on a pipe) → shots (luma histogram distance) →
  EfficientNet-Lite0 labels + 1280-d feature, open_nsfw score (onnxruntime) → PP-OCRv4 text
  (RapidOCR, the package the OCR models come from, with detection sized as Sightline does:
  longer side ≤ 960) → ConSE frame vector in MiniLM space (MiniLM via onnxruntime, labels
  embedded once) → per-shot mean vectors and a caption → pyzmq PUB + one JSONL file.

Usage: batch_baseline.py VIDEO --models DIR --out OUT.jsonl [--threads 2] [--fps 2] [--endpoint tcp://127.0.0.1:5599]
  DIR holds open_nsfw.onnx, efficientnet-lite0.onnx, minilm.onnx, tokenizer.json, imagenet.txt
  and the three PP-OCR .onnx files (`sightline bench batch` prepares it).
Needs: numpy, onnxruntime, pyzmq, tokenizers, rapidocr-onnxruntime==1.4.4, the ffmpeg CLI.
"""
import argparse
import json
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort
import zmq
from rapidocr_onnxruntime import RapidOCR
from tokenizers import Tokenizer


def probe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
                          "-of", "csv=p=0", path], capture_output=True, text=True, check=True).stdout
    w, h = (int(v) for v in out.strip().split(",")[:2])
    return w, h


def frames(path, fps, w, h):
    """Sampled frames from the ffmpeg CLI: (time, HxWx3 uint8 RGB). The select filter keeps the
    first frame of each 1/fps slot — the rule Sightline's sampler uses, so both see the same frames."""
    keep = f"select='isnan(prev_selected_t)+gt(floor(t*{fps})\\,floor(prev_selected_t*{fps}))'"
    proc = subprocess.Popen(["ffmpeg", "-v", "error", "-i", path, "-vf", keep, "-fps_mode", "passthrough",
                             "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], stdout=subprocess.PIPE)
    size = w * h * 3
    index = 0
    while True:
        raw = proc.stdout.read(size)
        if len(raw) < size:
            break
        yield index / fps, np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3)
        index += 1
    proc.wait()


def resize_crop(img, resize=256, crop=224):
    """Stretch to resize², bilinear with half-pixel centres (as Sightline), centre crop."""
    h, w, _ = img.shape
    ys = np.clip((np.arange(resize) + 0.5) * h / resize - 0.5, 0, h - 1)
    xs = np.clip((np.arange(resize) + 0.5) * w / resize - 0.5, 0, w - 1)
    y0 = np.floor(ys).astype(int); x0 = np.floor(xs).astype(int)
    y1 = np.minimum(y0 + 1, h - 1); x1 = np.minimum(x0 + 1, w - 1)
    fy = (ys - y0)[:, None, None].astype(np.float32); fx = (xs - x0)[None, :, None].astype(np.float32)
    f = img.astype(np.float32)
    top = f[y0][:, x0] * (1 - fx) + f[y0][:, x1] * fx
    bottom = f[y1][:, x0] * (1 - fx) + f[y1][:, x1] * fx
    out = top * (1 - fy) + bottom * fy
    o = (resize - crop) // 2
    return out[o:o + crop, o:o + crop, :]


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class MiniLM:
    def __init__(self, model_dir, options):
        self.session = ort.InferenceSession(model_dir + "/minilm.onnx", options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(model_dir + "/tokenizer.json")
        self.tokenizer.enable_truncation(256)
        self.cache = {}

    def embed(self, texts):
        missing = [t for t in texts if t not in self.cache]
        if missing:
            encoded = self.tokenizer.encode_batch(missing)
            length = max(len(e.ids) for e in encoded)
            ids = np.zeros((len(missing), length), dtype=np.int64)
            mask = np.zeros_like(ids)
            for i, e in enumerate(encoded):
                ids[i, :len(e.ids)] = e.ids
                mask[i, :len(e.ids)] = 1
            vectors = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            for t, v in zip(missing, vectors):
                self.cache[t] = v
        return [self.cache[t] for t in texts]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("video")
    ap.add_argument("--models", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fps", type=float, default=2)
    ap.add_argument("--endpoint", default="tcp://127.0.0.1:5599")
    args = ap.parse_args()
    started = time.time()

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    nsfw = ort.InferenceSession(args.models + "/open_nsfw.onnx", options, providers=["CPUExecutionProvider"])
    effnet = ort.InferenceSession(args.models + "/efficientnet-lite0.onnx", options, providers=["CPUExecutionProvider"])
    ocr = RapidOCR(det_model_path=args.models + "/ch_PP-OCRv4_det_infer.onnx", rec_model_path=args.models + "/ch_PP-OCRv4_rec_infer.onnx",
                   cls_model_path=args.models + "/ch_ppocr_mobile_v2.0_cls_infer.onnx", det_limit_type="max", det_limit_side_len=960,
                   intra_op_num_threads=args.threads, inter_op_num_threads=1)
    minilm = MiniLM(args.models, options)
    labels = open(args.models + "/imagenet.txt").read().splitlines()
    nsfw_input = nsfw.get_inputs()[0].name

    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    pub.bind(args.endpoint)
    out = open(args.out, "w")
    seq = {}

    def publish(kind, start, end, data, vector=None):
        topic = f"{kind}/baseline/"
        header = {"kind": kind, "source": "baseline", "seq": seq.get(topic, 0), "pts_start": start, "pts_end": end,
                  "wallclock": time.time(), "data": data}
        seq[topic] = seq.get(topic, 0) + 1
        parts = [topic.encode(), json.dumps(header, sort_keys=True).encode()]
        if vector is not None:
            parts.append(np.asarray(vector, dtype="<f4").tobytes())
        pub.send_multipart(parts)
        out.write(json.dumps({"topic": topic, "header": header}, sort_keys=True) + "\n")

    w, h = probe(args.video)
    shot_start, shot_index, previous_hist = 0.0, 0, None
    shot_vectors, shot_labels, shot_texts = [], [], []
    last_time = 0.0

    def finish_shot(end, reason):
        nonlocal shot_vectors, shot_labels, shot_texts, shot_index
        publish("shots", shot_start, end, {"index": shot_index, "ended_by": reason})
        if shot_vectors:
            for space, dim in (("efficientnet-lite0-pooled", 1280), ("minilm-384-conse", 384)):
                v = np.mean([s[space] for s in shot_vectors], axis=0)
                publish("embeddings", shot_start, end, {"space": space, "dimension": dim, "scope": "segment"}, v / max(np.linalg.norm(v), 1e-12))
            sums = {}
            for frame_labels in shot_labels:
                for name, p in frame_labels:
                    sums[name] = sums.get(name, 0) + p / len(shot_labels)
            top = sorted(sums.items(), key=lambda kv: -kv[1])[:3]
            text = f"Shows a {top[0][0]} ({round(top[0][1] * 100)}%)" if top else "Unclear scene"
            if shot_texts:
                text += ", on-screen text “" + " / ".join(dict.fromkeys(shot_texts)) + "”"
            publish("captions", shot_start, end, {"caption": text + f", a {end - shot_start:.0f} s shot."})
        shot_vectors, shot_labels, shot_texts = [], [], []
        shot_index += 1

    for t, img in frames(args.video, args.fps, w, h):
        last_time = t
        # Shots: a 32-bin luma histogram; half the L1 distance above 0.3 is a cut.
        luma = (img[:, :, 0] * 0.299 + img[:, :, 1] * 0.587 + img[:, :, 2] * 0.114)
        hist = np.histogram(luma, bins=32, range=(0, 256))[0] / luma.size
        if previous_hist is not None and np.abs(hist - previous_hist).sum() / 2 > 0.3 and t - shot_start >= 0.5:
            finish_shot(t, "cut")
            shot_start = t
        previous_hist = hist

        crop = resize_crop(img)
        logits, features = effnet.run(None, {"image": ((crop - 127) / 128).transpose(2, 0, 1)[None].astype(np.float32)})
        probs = softmax(logits[0])
        top5 = [(labels[i], float(probs[i])) for i in np.argsort(-probs)[:5]]
        publish("labels", t, t, {"labels": [{"label": n, "p": round(p, 5)} for n, p in top5]})
        feature = features[0] / max(np.linalg.norm(features[0]), 1e-12)
        publish("embeddings", t, t, {"space": "efficientnet-lite0-pooled", "dimension": 1280, "scope": "frame"}, feature)

        score = float(nsfw.run(None, {nsfw_input: (crop[:, :, ::-1] - np.array([104, 117, 123], dtype=np.float32))[None].astype(np.float32)})[0][0][1])
        publish("nsfw", t, t, {"score": round(score, 6)})

        result, _ = ocr(img[:, :, ::-1].copy())
        lines = [(r[1], float(r[2])) for r in (result or []) if float(r[2]) >= 0.5]
        text = "\n".join(line for line, _ in lines)
        publish("ocr", t, t, {"text": text, "lines": [{"text": l, "confidence": round(c, 4)} for l, c in lines]})

        names = [n for n, _ in top5]
        label_vectors = minilm.embed(names)
        conse = sum(p * v for (_, p), v in zip(top5, label_vectors)) / max(sum(p for _, p in top5), 1e-12)
        if text.strip():
            conse = conse + 0.5 * minilm.embed([text.strip()])[0]
        conse = conse / max(np.linalg.norm(conse), 1e-12)
        publish("embeddings", t, t, {"space": "minilm-384-conse", "dimension": 384, "scope": "frame"}, conse)

        shot_vectors.append({"efficientnet-lite0-pooled": feature, "minilm-384-conse": conse})
        shot_labels.append(top5)
        shot_texts.extend(line for line, _ in lines)

    finish_shot(last_time, "end")
    out.close()
    pub.close(linger=2000)
    context.term()
    print(json.dumps({"seconds": time.time() - started}))


if __name__ == "__main__":
    sys.exit(main())
