#!/usr/bin/env python3
"""EfficientNet-Lite0 reference: converts the legacy .pth state_dict to ONNX (with the `onnx`
package, TF-style SAME padding written as explicit pads, BatchNorm eps 1e-3, ReLU6 as Clip),
then runs onnxruntime on real photos preprocessed exactly as Sightline does.

Usage: python3 Scripts/reference/efficientnet_reference.py MODEL.pth OUT.onnx PHOTO... > outputs.json
       (without photos: only write OUT.onnx)
Needs: numpy, onnx, onnxruntime, the ffmpeg CLI. Reads the checkpoint with a restricted
unpickler (only OrderedDict, _rebuild_tensor_v2 and storages), like Sightline's loader.
"""
import collections
import io
import json
import pickle
import struct
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from onnx_reference import decode_rgb, resize_bilinear  # noqa: E402

BLOCKS = [(1, 1), (2, 6), (1, 6), (2, 6), (1, 6), (2, 6), (1, 6), (1, 6), (1, 6), (1, 6), (1, 6), (2, 6), (1, 6), (1, 6), (1, 6), (1, 6)]


def load_state_dict(path):
    data = open(path, "rb").read()
    stream = io.BytesIO(data)
    refs = {}

    class Restricted(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return lambda storage, offset, size, stride, *rest: ("tensor", storage, offset, size, stride)
            if module == "torch" and name in ("FloatStorage", "LongStorage"):
                return name
            raise pickle.UnpicklingError("refused global %s.%s" % (module, name))

        def persistent_load(self, pid):
            refs[pid[2]] = pid[1]
            return (pid[2], pid[1])

    u = Restricted(stream)
    for _ in range(3):
        u.load()
    state = u.load()
    keys = u.load()
    offset = stream.tell()
    storages = {}
    for key in keys:
        (count,) = struct.unpack("<q", data[offset:offset + 8]); offset += 8
        dtype = np.float32 if refs[key] == "FloatStorage" else np.int64
        size = np.dtype(dtype).itemsize
        storages[key] = np.frombuffer(data[offset:offset + count * size], dtype=dtype); offset += count * size
    out = {}
    for name, (_, (key, _t), off, shape, stride) in state.items():
        base = storages[key]
        out[name] = np.lib.stride_tricks.as_strided(base[off:], shape=shape, strides=[s * base.itemsize for s in stride]).astype(np.float32).copy()
    return out


def same_pads(size, kernel, stride):
    out = (size + stride - 1) // stride
    total = max(0, (out - 1) * stride + kernel - size)
    return total // 2, total - total // 2, out


def build(weights, path, size=224):
    nodes, inits = [], []
    for name, value in weights.items():
        if not name.endswith("num_batches_tracked"):
            inits.append(numpy_helper.from_array(value, name))
    inits += [numpy_helper.from_array(np.array(0, np.float32), "zero"), numpy_helper.from_array(np.array(6, np.float32), "six")]
    counter = [0]

    def fresh(p):
        counter[0] += 1
        return "%s_%d" % (p, counter[0])

    def conv(x, key, stride, spatial):
        w = weights[key + ".weight"]
        k = w.shape[2]
        b, e, out = same_pads(spatial, k, stride)
        y = fresh(key)
        group = w.shape[0] if w.shape[1] == 1 and key.endswith("_depthwise_conv") else 1
        nodes.append(helper.make_node("Conv", [x, key + ".weight"], [y], strides=[stride, stride], pads=[b, b, e, e], group=group, kernel_shape=[k, k]))
        return y, out

    def bn(x, key):
        y = fresh(key)
        nodes.append(helper.make_node("BatchNormalization", [x] + [key + s for s in (".weight", ".bias", ".running_mean", ".running_var")], [y], epsilon=1e-3))
        return y

    def relu6(x):
        y = fresh("relu6")
        nodes.append(helper.make_node("Clip", [x, "zero", "six"], [y]))
        return y

    x, spatial = conv("image", "_conv_stem", 2, size)
    x = relu6(bn(x, "_bn0"))
    channels = weights["_conv_stem.weight"].shape[0]
    for i, (stride, expand) in enumerate(BLOCKS):
        p = "_blocks.%d" % i
        inp, h = x, x
        if expand != 1:
            h, spatial = conv(h, p + "._expand_conv", 1, spatial)
            h = relu6(bn(h, p + "._bn0"))
        h, spatial = conv(h, p + "._depthwise_conv", stride, spatial)
        h = relu6(bn(h, p + "._bn1"))
        h, spatial = conv(h, p + "._project_conv", 1, spatial)
        h = bn(h, p + "._bn2")
        out_channels = weights[p + "._project_conv.weight"].shape[0]
        if stride == 1 and out_channels == channels:
            s = fresh(p + "_add")
            nodes.append(helper.make_node("Add", [h, inp], [s]))
            h = s
        channels, x = out_channels, h
    x, spatial = conv(x, "_conv_head", 1, spatial)
    x = relu6(bn(x, "_bn1"))
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"]))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["features"], axis=1))
    nodes.append(helper.make_node("Gemm", ["features", "_fc.weight", "_fc.bias"], ["logits"], transB=1))
    graph = helper.make_graph(nodes, "efficientnet_lite0", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, size, size])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1000]),
                               helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 1280])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


def preprocess(img):
    resized = resize_bilinear(img, 256, 256)
    crop = resized[16:240, 16:240, :]
    return ((crop - np.float32(127)) / np.float32(128)).transpose(2, 0, 1)[None].astype(np.float32)


def main():
    pth, onnx_path, photos = sys.argv[1], sys.argv[2], sys.argv[3:]
    build(load_state_dict(pth), onnx_path)
    if not photos:
        return  # export only (what `sightline bench infer efficientnet-lite0` uses)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    results = {}
    for photo in photos:
        logits, features = session.run(["logits", "features"], {"image": preprocess(decode_rgb(photo))})
        top5 = np.argsort(-logits[0])[:5]
        results[photo.split("/")[-1]] = {
            "logits_top5": [[int(i), float(logits[0][i])] for i in top5],
            "logits_sum": float(logits[0].astype(np.float64).sum()),
            "logits_sq": float((logits[0].astype(np.float64) ** 2).sum()),
            "features_head": [float(v) for v in features[0][:16]],
            "features_sum": float(features[0].astype(np.float64).sum()),
            "features_sq": float((features[0].astype(np.float64) ** 2).sum()),
        }
    json.dump({"model": pth.split("/")[-1], "onnxruntime": ort.__version__, "outputs": results}, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
