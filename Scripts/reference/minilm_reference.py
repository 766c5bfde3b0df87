#!/usr/bin/env python3
"""Reference token ids and embeddings for all-MiniLM-L6-v2.

Tokens come from Hugging Face `tokenizers` reading the packaged tokenizer.json (the tokenizer
sentence-transformers uses), with max length 256 as in sentence_bert_config.json. Embeddings come
from an independent float64 numpy implementation of BertModel + mean pooling + L2 normalisation
(what sentence-transformers computes; torch itself is not installable offline here).

Usage: python3 Scripts/reference/minilm_reference.py MODEL_DIR > minilm-reference.json
Needs: numpy, tokenizers.
"""
import json
import math
import struct
import sys

import numpy as np
from tokenizers import Tokenizer

SENTENCES = [
    "A cat sits on the mat.",
    "A kitten is resting on a rug.",
    "Stock markets fell sharply today.",
    "The quick brown fox jumps over the lazy dog",
    "Café déjà vu: naïve résumé façade",
    "東京は日本の首都です。",
    "Emoji 🚀🔥 and symbols ©®™ mixed in",
    "",
    "unbelievably antidisestablishmentarianism hyperparameterization",
    "Hello,world!How are you?I'm fine...thanks",
    "word " * 300,
]


def load_safetensors(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = {"F32": np.float32, "I64": np.int64}[info["dtype"]]
        out[name] = np.frombuffer(data[8 + n + start:8 + n + end], dtype=dtype).reshape(info["shape"]).astype(np.float64)
    return out


def layer_norm(x, w, b, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def embed(W, ids):
    L = len(ids)
    x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:L] + W["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"])
    for l in range(6):
        p = "encoder.layer.%d." % l
        lin = lambda h, name: h @ W[p + name + ".weight"].T + W[p + name + ".bias"]
        q, k, v = (lin(x, "attention.self." + n).reshape(L, 12, 32).transpose(1, 0, 2) for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 2, 1) / math.sqrt(32)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(L, 384)
        x = layer_norm(x + lin(ctx, "attention.output.dense"), W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"])
        x = layer_norm(x + lin(gelu(lin(x, "intermediate.dense")), "output.dense"), W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"])
    e = x.mean(0)
    return e / np.linalg.norm(e)


def main():
    model_dir = sys.argv[1]
    tok = Tokenizer.from_file(model_dir + "/tokenizer.json")
    tok.enable_truncation(256)
    tok.no_padding()
    W = load_safetensors(model_dir + "/model.safetensors")
    out = []
    for s in SENTENCES:
        ids = tok.encode(s).ids
        out.append({"text": s, "ids": ids, "embedding": [float(v) for v in embed(W, ids)]})
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
