#!/usr/bin/env python3
"""Exports all-MiniLM-L6-v2 (model.safetensors) to ONNX with the `onnx` package — BERT encoder,
mean pooling over the attention mask, L2 normalisation — so onnxruntime can run the same weights
in `sightline bench infer all-minilm-l6-v2`. With --time, also times onnxruntime on a batch of
token ids and prints one JSON line.

Usage: python3 Scripts/reference/minilm_onnx.py MODEL.safetensors OUT.onnx [--time BATCH LENGTH THREADS RUNS|paired]
(RUNS `paired`: each line N on stdin is answered with the times of N calls, for paired timing; paired_runs.py.)
Needs: numpy, onnx, onnxruntime.
"""
import json
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from minilm_reference import load_safetensors  # noqa: E402


def build(weights, path):
    W = {k: v.astype(np.float32) for k, v in weights.items() if not k.endswith("position_ids")}
    inits = [numpy_helper.from_array(v, k) for k, v in W.items()]
    def const(name, value, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.array(value, dtype=dtype), name))
        return name
    nodes = []
    n = [0]
    def node(op, inputs, **attrs):
        n[0] += 1
        out = "%s_%d" % (op, n[0])
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out
    def linear(x, prefix):
        wt = prefix + ".weight.T"
        inits.append(numpy_helper.from_array(np.ascontiguousarray(W[prefix + ".weight"].T), wt))
        return node("Add", [node("MatMul", [x, wt]), prefix + ".bias"])
    def ln(x, prefix):
        return node("LayerNormalization", [x, prefix + ".weight", prefix + ".bias"], axis=-1, epsilon=1e-12)
    shape = node("Shape", ["input_ids"])
    length = node("Gather", [shape, const("one_i", 1, np.int64)], axis=0)
    positions = node("Range", [const("zero_i", 0, np.int64), length, const("step_i", 1, np.int64)])
    x = node("Add", [node("Gather", ["embeddings.word_embeddings.weight", "input_ids"]), node("Gather", ["embeddings.position_embeddings.weight", positions])])
    x = node("Add", [x, node("Gather", ["embeddings.token_type_embeddings.weight", const("type0", 0, np.int64)])])
    x = ln(x, "embeddings.LayerNorm")
    maskf = node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    bias = node("Mul", [node("Sub", [const("onef", 1.0), node("Unsqueeze", [maskf, const("axes12", [1, 2], np.int64)])]), const("neg", -1e9)])
    heads_shape = const("heads_shape", [0, -1, 12, 32], np.int64)
    for l in range(6):
        p = "encoder.layer.%d." % l
        def split(t):
            return node("Transpose", [node("Reshape", [t, heads_shape])], perm=[0, 2, 1, 3])
        q, k, v = (split(linear(x, p + "attention.self." + s)) for s in ("query", "key", "value"))
        scores = node("Add", [node("Mul", [node("MatMul", [q, node("Transpose", [k], perm=[0, 1, 3, 2])]), const("scale%d" % l, 1 / np.sqrt(32))]), bias])
        ctx = node("MatMul", [node("Softmax", [scores], axis=-1), v])
        ctx = node("Reshape", [node("Transpose", [ctx], perm=[0, 2, 1, 3]), const("merge%d" % l, [0, -1, 384], np.int64)])
        x = ln(node("Add", [x, linear(ctx, p + "attention.output.dense")]), p + "attention.output.LayerNorm")
        h = linear(x, p + "intermediate.dense")
        h = node("Mul", [node("Mul", [h, const("half%d" % l, 0.5)]), node("Add", [const("one%d" % l, 1.0), node("Erf", [node("Div", [h, const("sqrt2%d" % l, np.sqrt(2))])])])])
        x = ln(node("Add", [x, linear(h, p + "output.dense")]), p + "output.LayerNorm")
    m3 = node("Unsqueeze", [maskf, const("axes2", [2], np.int64)])
    pooled = node("Div", [node("ReduceSum", [node("Mul", [x, m3]), const("axis1", [1], np.int64)], keepdims=0),
                          node("ReduceSum", [m3, const("axis1b", [1], np.int64)], keepdims=0)])
    norm = node("Sqrt", [node("ReduceSum", [node("Mul", [pooled, pooled]), const("axisl", [1], np.int64)], keepdims=1)])
    nodes.append(helper.make_node("Div", [pooled, norm], ["embedding"]))
    graph = helper.make_graph(nodes, "minilm", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "l"]),
                                                helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "l"])],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["b", 384])], inits)
    used = {i for n in nodes for i in n.input}
    del graph.initializer[:]
    graph.initializer.extend(t for t in inits if t.name in used)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def main():
    build(load_safetensors(sys.argv[1]), sys.argv[2])
    if len(sys.argv) > 3 and sys.argv[3] == "--time":
        import onnxruntime as ort
        batch, length, threads = (int(v) for v in sys.argv[4:7])
        runs = sys.argv[7]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(sys.argv[2], options, providers=["CPUExecutionProvider"])
        ids = (np.arange(batch * length, dtype=np.int64).reshape(batch, length) * 7919) % 20000 + 1000
        ids[:, 0], ids[:, -1] = 101, 102
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        for _ in range(3):
            session.run(None, feed)
        if runs == "paired":
            from paired_runs import serve
            serve(lambda: session.run(None, feed))
            return
        times = []
        for _ in range(int(runs)):
            start = time.perf_counter()
            session.run(None, feed)
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        print(json.dumps({"median_ms": times[len(times) // 2], "onnxruntime": ort.__version__}))


if __name__ == "__main__":
    main()
