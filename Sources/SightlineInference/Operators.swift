import Foundation
import SightlineCore
import SightlineKernels

/// Reference semantics of every supported ONNX operator on concrete values. Used to fold
/// constants, to discover shapes while planning, and to run the steps no fused kernel covers.
enum Operators {
    static let supported: Set<String> = [
        "Identity", "Cast", "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sqrt", "Neg", "Exp", "Erf", "Tanh",
        "Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu",
        "Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean", "MatMul", "Gemm", "Softmax",
        "BatchNormalization", "Transpose", "Reshape", "Flatten", "Concat", "Slice", "Gather", "Shape",
        "Squeeze", "Unsqueeze", "Pad", "ConstantOfShape", "Dropout", "ConvTranspose", "Resize", "LayerNormalization",
    ]

    static func evaluate(_ node: IRNode, _ inputs: [IRValue?]) throws -> [IRValue] {
        func input(_ i: Int) throws -> IRValue {
            guard i < inputs.count, let v = inputs[i] else { throw ModelError.missing("input \(i) of \(node.op) node '\(node.name)'") }
            return v
        }
        func floatInput(_ i: Int) throws -> Tensor { try input(i).asFloat }
        func optionalInts(_ i: Int) -> [Int]? {
            guard i < inputs.count, let v = inputs[i] else { return nil }
            return v.asInt64.map { Int($0) }
        }

        switch node.op {
        case "Identity", "Dropout":
            return [try input(0)]
        case "Cast":
            let to = node.int("to", 1)
            let v = try input(0)
            switch to {
            case 1, 10, 11: return [.float(v.asFloat)]
            case 6, 7, 9, 2, 3, 4, 5, 12, 13:
                if case .float(let t) = v { return [.int64(shape: t.shape, data: t.data.map { to == 9 ? ($0 != 0 ? 1 : 0) : Int64($0) })] }
                return [v]
            default: throw ModelError.unsupported("Cast to ONNX type \(to) (node '\(node.name)')")
            }
        case "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min":
            let a = try input(0), b = try input(1)
            guard let shape = broadcastShape(a.shape, b.shape) else {
                throw ModelError.shapeMismatch("\(node.op) '\(node.name)': \(a.shape) and \(b.shape) do not broadcast")
            }
            if a.isInteger && b.isInteger {
                return [.int64(shape: shape, data: try integerBinary(node.op, a, b, shape))]
            }
            let op: BinaryOp = ["Add": .add, "Sub": .sub, "Mul": .mul, "Div": .div, "Pow": .pow, "Max": .max, "Min": .min][node.op] ?? .add
            let ta = a.asFloat, tb = b.asFloat
            var out: [Float] = []
            broadcastBinary(op, a: ta.data, aShape: ta.shape, b: tb.data, bShape: tb.shape, out: &out, outShape: shape)
            if node.int("sightline.relu", 0) == 1 {
                out.withUnsafeMutableBufferPointer { Activation.relu.apply($0.baseAddress!, count: $0.count) }
            }
            return [.float(Tensor(shape: shape, data: out))]
        case "Sqrt", "Neg", "Exp", "Erf", "Tanh":
            var t = try floatInput(0)
            let f: (Float) -> Float = switch node.op {
            case "Sqrt": { $0.squareRoot() }
            case "Neg": { -$0 }
            case "Exp": { Foundation.exp($0) }
            case "Erf": { Foundation.erf($0) }
            default: { Foundation.tanh($0) }
            }
            for i in t.data.indices { t.data[i] = f(t.data[i]) }
            return [.float(t)]
        case "Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu":
            var t = try floatInput(0)
            if node.op == "LeakyRelu" {
                let alpha = node.float("alpha", 0.01)
                for i in t.data.indices where t.data[i] < 0 { t.data[i] *= alpha }
                return [.float(t)]
            }
            let activation = try self.activation(node, inputs)
            t.data.withUnsafeMutableBufferPointer { activation.apply($0.baseAddress!, count: $0.count) }
            return [.float(t)]
        case "Conv":
            let x = try floatInput(0), w = try floatInput(1)
            let b = inputs.count > 2 ? inputs[2]?.asFloat : nil
            return [.float(try ConvStep.make(node: node, inputShape: x.shape, weight: w, bias: b, activation: .none).run(x, threads: 1))]
        case "LayerNormalization":
            let x = try floatInput(0), gamma = try floatInput(1)
            let beta = inputs.count > 2 ? inputs[2]?.asFloat : nil
            var axis = node.int("axis", -1)
            if axis < 0 { axis += x.rank }
            guard axis == x.rank - 1, let width = x.shape.last, gamma.count == width, beta.map({ $0.count == width }) ?? true else {
                throw ModelError.unsupported("LayerNormalization over axis \(axis) of \(x.shape) (node '\(node.name)')")
            }
            return [.float(fusedLayerNorm(x, gamma: gamma, beta: beta ?? Tensor(zeros: [width]), epsilon: node.float("epsilon", 1e-5)))]
        case "ConvTranspose":
            let x = try floatInput(0), w = try floatInput(1)
            let b = inputs.count > 2 ? inputs[2]?.asFloat : nil
            guard x.rank == 4, w.rank == 4 else { throw ModelError.unsupported("ConvTranspose of rank \(x.rank) (node '\(node.name)')") }
            let groups = node.int("group", 1)
            guard groups >= 1, w.shape[0] == x.shape[1], x.shape[1] % groups == 0 else {
                throw ModelError.shapeMismatch("ConvTranspose '\(node.name)': input \(x.shape), weight \(w.shape)")
            }
            let outChannels = w.shape[1] * groups
            if let b, b.count != outChannels { throw ModelError.shapeMismatch("ConvTranspose '\(node.name)' bias") }
            let kernel = node.ints("kernel_shape") ?? [w.shape[2], w.shape[3]]
            let strides = node.ints("strides") ?? [1, 1], dilations = node.ints("dilations") ?? [1, 1]
            var pads = node.ints("pads") ?? [0, 0, 0, 0]
            if pads.isEmpty { pads = [0, 0, 0, 0] }
            let outputPadding = node.ints("output_padding") ?? [0, 0]
            guard kernel == [w.shape[2], w.shape[3]], strides.count == 2, dilations.count == 2, pads.count == 4, outputPadding.count == 2,
                  strides.allSatisfy({ (1...64).contains($0) }), dilations.allSatisfy({ (1...64).contains($0) }), pads.allSatisfy({ (0...64).contains($0) }) else {
                throw ModelError.malformed("bad ConvTranspose attributes in node '\(node.name)'")
            }
            let oh = (x.shape[2] - 1) * strides[0] - pads[0] - pads[2] + dilations[0] * (kernel[0] - 1) + 1 + outputPadding[0]
            let ow = (x.shape[3] - 1) * strides[1] - pads[1] - pads[3] + dilations[1] * (kernel[1] - 1) + 1 + outputPadding[1]
            guard oh > 0, ow > 0 else { throw ModelError.shapeMismatch("ConvTranspose '\(node.name)' output would be empty") }
            try checkShape([x.shape[0], outChannels, oh, ow], node)
            let g = Conv2DGeometry(kernelH: kernel[0], kernelW: kernel[1], strideH: strides[0], strideW: strides[1],
                                   padTop: pads[0], padLeft: pads[1], padBottom: pads[2], padRight: pads[3],
                                   dilationH: dilations[0], dilationW: dilations[1])
            var out = [Float](repeating: 0, count: x.shape[0] * outChannels * oh * ow)
            x.data.withUnsafeBufferPointer { xp in
                w.data.withUnsafeBufferPointer { wp in
                    out.withUnsafeMutableBufferPointer { op in
                        let biasData = b?.data ?? []
                        biasData.withUnsafeBufferPointer { bp in
                            convTranspose2d(input: xp.baseAddress!, batch: x.shape[0], channels: x.shape[1], height: x.shape[2], width: x.shape[3],
                                            weight: wp.baseAddress!, outChannels: outChannels, bias: b == nil ? nil : bp.baseAddress,
                                            groups: groups, geometry: g, outHeight: oh, outWidth: ow, output: op.baseAddress!)
                        }
                    }
                }
            }
            return [.float(Tensor(shape: [x.shape[0], outChannels, oh, ow], data: out))]
        case "Resize":
            let x = try floatInput(0)
            guard x.rank == 4 else { throw ModelError.unsupported("Resize of rank \(x.rank) (node '\(node.name)')") }
            let scales = inputs.count > 2 ? inputs[2]?.asFloat.data : nil
            let sizes = inputs.count > 3 ? inputs[3]?.asInt64.map { Int($0) } : nil
            var outShape = x.shape
            if let sizes, sizes.count == 4 {
                outShape = sizes
            } else if let scales, scales.count == 4 {
                outShape = (0..<4).map { Int((Float(x.shape[$0]) * scales[$0]).rounded(.down)) }
            } else {
                throw ModelError.missing("Resize '\(node.name)' needs 4 scales or sizes")
            }
            guard outShape[0] == x.shape[0], outShape[1] == x.shape[1], outShape[2] > 0, outShape[3] > 0 else {
                throw ModelError.unsupported("Resize '\(node.name)' of batch/channel axes")
            }
            try checkShape(outShape, node)
            let mode = node.string("mode") ?? "nearest"
            let transform = node.string("coordinate_transformation_mode") ?? "half_pixel"
            let nearestMode = node.string("nearest_mode") ?? "round_prefer_floor"
            let scaleH = scales.map { $0[2] } ?? Float(outShape[2]) / Float(x.shape[2])
            let scaleW = scales.map { $0[3] } ?? Float(outShape[3]) / Float(x.shape[3])
            return [.float(try resize(x, to: outShape, mode: mode, transform: transform, nearestMode: nearestMode, scaleH: scaleH, scaleW: scaleW, node: node))]
        case "MaxPool", "AveragePool":
            let x = try floatInput(0)
            guard x.rank == 4 else { throw ModelError.unsupported("\(node.op) on rank \(x.rank) (node '\(node.name)')") }
            let g = try geometry(node, inputShape: x.shape, kernel: node.ints("kernel_shape") ?? [1, 1])
            if node.int("ceil_mode", 0) != 0 { throw ModelError.unsupported("ceil_mode pooling (node '\(node.name)')") }
            let (oh, ow) = g.outputSize(height: x.shape[2], width: x.shape[3])
            var out = [Float](repeating: 0, count: x.shape[0] * x.shape[1] * oh * ow)
            x.data.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    pool2d(input: src.baseAddress!, batch: x.shape[0], channels: x.shape[1], height: x.shape[2], width: x.shape[3],
                           geometry: g, isMax: node.op == "MaxPool", countIncludePad: node.int("count_include_pad", 0) != 0,
                           output: dst.baseAddress!)
                }
            }
            return [.float(Tensor(shape: [x.shape[0], x.shape[1], oh, ow], data: out))]
        case "GlobalAveragePool":
            let x = try floatInput(0)
            guard x.rank >= 3 else { throw ModelError.shapeMismatch("GlobalAveragePool '\(node.name)' on shape \(x.shape)") }
            let planes = x.shape[0] * x.shape[1]
            var out = [Float](repeating: 0, count: planes)
            x.data.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { globalAveragePool(input: src.baseAddress!, planes: planes, spatial: x.count / max(planes, 1), output: $0.baseAddress!) }
            }
            return [.float(Tensor(shape: [x.shape[0], x.shape[1]] + [Int](repeating: 1, count: x.rank - 2), data: out))]
        case "ReduceMean":
            let x = try floatInput(0)
            let axes = (node.ints("axes") ?? optionalInts(1) ?? Array(0..<x.rank)).map { $0 < 0 ? $0 + x.rank : $0 }
            let keep = node.int("keepdims", 1) != 0
            if Set(axes) == Set((x.rank - axes.count)..<x.rank) && !axes.isEmpty {
                // Innermost axes: a plain mean per row (global average pooling).
                let inner = axes.map { x.shape[$0] }.reduce(1, *)
                let rows = x.count / max(inner, 1)
                var out = [Float](repeating: 0, count: rows)
                x.data.withUnsafeBufferPointer { src in
                    out.withUnsafeMutableBufferPointer { globalAveragePool(input: src.baseAddress!, planes: rows, spatial: inner, output: $0.baseAddress!) }
                }
                let shape = keep ? x.shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element } : Array(x.shape.prefix(x.rank - axes.count))
                return [.float(Tensor(shape: shape, data: out))]
            }
            return [.float(reduceMean(x, axes: Set(axes), keepDims: keep))]
        case "MatMul":
            return [.float(try matmul(try floatInput(0), try floatInput(1), node: node))]
        case "Gemm":
            let a = try floatInput(0), b = try floatInput(1)
            guard a.rank == 2, b.rank == 2 else { throw ModelError.shapeMismatch("Gemm '\(node.name)' of \(a.shape) and \(b.shape)") }
            let transA = node.int("transA", 0) != 0, transB = node.int("transB", 0) != 0
            let m = transA ? a.shape[1] : a.shape[0], k = transA ? a.shape[0] : a.shape[1]
            let n = transB ? b.shape[0] : b.shape[1]
            guard (transB ? b.shape[1] : b.shape[0]) == k else { throw ModelError.shapeMismatch("Gemm '\(node.name)' of \(a.shape) and \(b.shape)") }
            // The transposes are GEMM flags, never copies (a 1000×1280 classifier would
            // otherwise be transposed on every run).
            var product = [Float](repeating: 0, count: m * n)
            a.data.withUnsafeBufferPointer { ap in
                b.data.withUnsafeBufferPointer { bp in
                    product.withUnsafeMutableBufferPointer { cp in
                        gemm(transposeA: transA, transposeB: transB, m: m, n: n, k: k, a: ap.baseAddress!, lda: a.shape[1],
                             b: bp.baseAddress!, ldb: b.shape[1], c: cp.baseAddress!, ldc: n)
                    }
                }
            }
            var y = Tensor(shape: [m, n], data: product)
            let alpha = node.float("alpha", 1), beta = node.float("beta", 1)
            if alpha != 1 { for i in y.data.indices { y.data[i] *= alpha } }
            if inputs.count > 2, let c = inputs[2]?.asFloat {
                var scaled = c
                if beta != 1 { for i in scaled.data.indices { scaled.data[i] *= beta } }
                var out: [Float] = []
                broadcastBinary(.add, a: y.data, aShape: y.shape, b: scaled.data, bShape: scaled.shape, out: &out, outShape: y.shape)
                y.data = out
            }
            return [.float(y)]
        case "Softmax":
            var x = try floatInput(0)
            var axis = node.int("axis", -1)
            if axis < 0 { axis += x.rank }
            guard axis == x.rank - 1 else { throw ModelError.unsupported("Softmax over axis \(axis) of rank \(x.rank) (node '\(node.name)')") }
            let size = x.shape.last ?? 1
            softmax(&x.data, rows: x.count / max(size, 1), axisSize: size)
            return [.float(x)]
        case "BatchNormalization":
            var x = try floatInput(0)
            let scale = try floatInput(1).data, bias = try floatInput(2).data, mean = try floatInput(3).data, variance = try floatInput(4).data
            let eps = node.float("epsilon", 1e-5)
            guard x.rank >= 2 else { throw ModelError.shapeMismatch("BatchNormalization '\(node.name)' on \(x.shape)") }
            let channels = x.shape[1], spatial = x.count / max(x.shape[0] * channels, 1)
            guard [scale, bias, mean, variance].allSatisfy({ $0.count == channels }) else {
                throw ModelError.shapeMismatch("BatchNormalization '\(node.name)': parameters do not match \(channels) channels")
            }
            let batch = x.shape[0]
            x.data.withUnsafeMutableBufferPointer { data in
                for n in 0..<batch {
                    for c in 0..<channels {
                        // (x − mean)·k + bias as one multiply-add per element.
                        let k = scale[c] / (variance[c] + eps).squareRoot(), shift = bias[c] - mean[c] * k
                        let plane = data.baseAddress! + (n * channels + c) * spatial
                        for i in 0..<spatial { plane[i] = plane[i] * k + shift }
                    }
                }
            }
            return [.float(x)]
        case "Transpose":
            let v = try input(0)
            let perm = node.ints("perm") ?? Array((0..<v.shape.count).reversed())
            guard perm.sorted() == Array(0..<v.shape.count) else {
                throw ModelError.malformed("Transpose '\(node.name)': perm \(perm) for rank \(v.shape.count)")
            }
            switch v {
            case .float(let t):
                let (data, shape) = transpose(t.data, shape: t.shape, perm: perm)
                return [.float(Tensor(shape: shape, data: data))]
            case .int64(let shape, let data):
                let (d, s) = transpose(data.map(Float.init), shape: shape, perm: perm)
                return [.int64(shape: s, data: d.map { Int64($0) })]
            }
        case "Reshape":
            let v = try input(0)
            guard let target = optionalInts(1) else { throw ModelError.missing("Reshape '\(node.name)' needs a constant shape") }
            return [reshaped(v, try resolveReshape(target, from: v.shape, allowZero: node.int("allowzero", 0) != 0, node: node))]
        case "Flatten":
            let v = try input(0)
            var axis = node.int("axis", 1)
            if axis < 0 { axis += v.shape.count }
            guard axis >= 0, axis <= v.shape.count else { throw ModelError.malformed("Flatten '\(node.name)' axis \(axis)") }
            let outer = v.shape.prefix(axis).reduce(1, *)
            return [reshaped(v, [outer, v.shape.dropFirst(axis).reduce(1, *)])]
        case "Squeeze":
            let v = try input(0)
            let axes = (node.ints("axes") ?? optionalInts(1))?.map { $0 < 0 ? $0 + v.shape.count : $0 }
            if let axes, !axes.allSatisfy({ $0 >= 0 && $0 < v.shape.count && v.shape[$0] == 1 }) {
                throw ModelError.shapeMismatch("Squeeze '\(node.name)': axes \(axes) of shape \(v.shape)")
            }
            let shape = v.shape.enumerated().filter { item in
                if let axes { return !axes.contains(item.offset) }
                return item.element != 1
            }.map(\.element)
            return [reshaped(v, shape)]
        case "Unsqueeze":
            let v = try input(0)
            guard let rawAxes = node.ints("axes") ?? optionalInts(1) else { throw ModelError.missing("Unsqueeze '\(node.name)' axes") }
            let rank = v.shape.count + rawAxes.count
            let axes = Set(rawAxes.map { $0 < 0 ? $0 + rank : $0 })
            guard axes.count == rawAxes.count, axes.allSatisfy({ $0 >= 0 && $0 < rank }) else {
                throw ModelError.shapeMismatch("Unsqueeze '\(node.name)': axes \(rawAxes) for rank \(v.shape.count)")
            }
            var shape: [Int] = []
            var source = v.shape.makeIterator()
            for i in 0..<rank { shape.append(axes.contains(i) ? 1 : (source.next() ?? 1)) }
            return [reshaped(v, shape)]
        case "Concat":
            let values = inputs.compactMap { $0 }.filter { !$0.shape.contains(0) || $0.shape.count > 1 }
            guard let first = values.first else { return [try input(0)] }
            var axis = node.int("axis", 0)
            if axis < 0 { axis += first.shape.count }
            return [try concat(values, axis: axis, node: node)]
        case "Slice":
            let v = try input(0)
            guard let starts = optionalInts(1), let ends = optionalInts(2) else { throw ModelError.missing("Slice '\(node.name)' needs constant starts/ends") }
            let axes = optionalInts(3) ?? Array(0..<starts.count)
            let steps = optionalInts(4) ?? [Int](repeating: 1, count: starts.count)
            guard ends.count == starts.count, axes.count == starts.count, steps.count == starts.count else {
                throw ModelError.malformed("Slice '\(node.name)': starts/ends/axes/steps of different lengths")
            }
            return [try slice(v, starts: starts, ends: ends, axes: axes, steps: steps, node: node)]
        case "Gather":
            let v = try input(0)
            let indices = try input(1)
            var axis = node.int("axis", 0)
            if axis < 0 { axis += v.shape.count }
            return [try gather(v, indices: indices, axis: axis, node: node)]
        case "Shape":
            let v = try input(0)
            return [.int64(shape: [v.shape.count], data: v.shape.map { Int64($0) })]
        case "ConstantOfShape":
            let shape = try input(0).asInt64.map { Int(truncatingIfNeeded: $0) }
            try checkShape(shape, node)
            let count = shape.reduce(1, *)
            if case .tensor(let value)? = node.attributes["value"] {
                if case .int64(_, let d) = value { return [.int64(shape: shape, data: [Int64](repeating: d.first ?? 0, count: count))] }
                return [.float(Tensor(shape: shape, data: [Float](repeating: value.asFloat.data.first ?? 0, count: count)))]
            }
            return [.float(Tensor(shape: shape, data: [Float](repeating: 0, count: count)))]
        case "Pad":
            let x = try floatInput(0)
            guard let pads = node.ints("pads") ?? optionalInts(1) else { throw ModelError.missing("Pad '\(node.name)' pads") }
            let mode = node.string("mode") ?? "constant"
            let value: Float = inputs.count > 2 ? (inputs[2]?.asFloat.data.first ?? 0) : node.float("value", 0)
            if mode == "constant" { return [.float(try pad(x, pads: pads, value: value, node: node))] }
            guard mode == "edge" || mode == "reflect" else { throw ModelError.unsupported("Pad mode '\(mode)' (node '\(node.name)')") }
            return [.float(try padBorder(x, pads: pads, reflect: mode == "reflect", node: node))]
        default:
            throw ModelError.unsupportedOperator(node.op, node: node.name)
        }
    }

    /// softmax(q·kᵀ·scale)·v over the last two axes ([..., L, d]); leading axes are a batch.
    static func fusedAttention(q: Tensor, k: Tensor, v: Tensor, scale: Float) -> Tensor {
        let length = q.shape[q.rank - 2], d = q.shape[q.rank - 1]
        let batch = q.count / max(length * d, 1)
        var out = [Float](repeating: 0, count: q.count)
        q.data.withUnsafeBufferPointer { qp in
            k.data.withUnsafeBufferPointer { kp in
                v.data.withUnsafeBufferPointer { vp in
                    out.withUnsafeMutableBufferPointer { op in
                        attention(q: qp.baseAddress!, k: kp.baseAddress!, v: vp.baseAddress!, out: op.baseAddress!, batch: batch,
                                  length: length, heads: 1, headDim: d, rowStride: d, keyMask: nil, scale: scale)
                    }
                }
            }
        }
        return Tensor(shape: q.shape, data: out)
    }

    static func fusedLayerNorm(_ x: Tensor, gamma: Tensor, beta: Tensor, epsilon: Float) -> Tensor {
        var out = x
        let width = x.shape.last ?? 1
        gamma.data.withUnsafeBufferPointer { g in
            beta.data.withUnsafeBufferPointer { b in
                out.data.withUnsafeMutableBufferPointer { layerNorm($0.baseAddress!, rows: x.count / max(width, 1), width: width,
                                                                    gamma: g.baseAddress!, beta: b.baseAddress!, epsilon: epsilon) }
            }
        }
        return out
    }

    /// Refuses shapes no real model produces: negative dims or more than 2^28 elements (1 GiB
    /// of floats), so a corrupted file cannot ask for absurd allocations.
    static func checkShape(_ shape: [Int], _ node: IRNode) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw ModelError.shapeMismatch("negative dimension \(shape) in node '\(node.name)'") }
        var count = 1
        for d in shape {
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, p <= 1 << 28 else { throw ModelError.unsupported("tensor of shape \(shape) in node '\(node.name)' is too large") }
            count = p
        }
    }

    static func activation(_ node: IRNode, _ inputs: [IRValue?]) throws -> Activation {
        switch node.op {
        case "Relu": return .relu
        case "Sigmoid": return .sigmoid
        case "HardSwish": return .hardSwish
        case "HardSigmoid": return .hardSigmoid(alpha: node.float("alpha", 0.2), beta: node.float("beta", 0.5))
        case "Clip":
            let lo = inputs.count > 1 ? (inputs[1]?.asFloat.data.first ?? -.infinity) : node.float("min", -.infinity)
            let hi = inputs.count > 2 ? (inputs[2]?.asFloat.data.first ?? .infinity) : node.float("max", .infinity)
            return .clip(min: lo, max: hi)
        default: throw ModelError.unsupportedOperator(node.op, node: node.name)
        }
    }

    /// Conv/pool window geometry from ONNX attributes (pads, strides, dilations, auto_pad).
    static func geometry(_ node: IRNode, inputShape: [Int], kernel: [Int]) throws -> Conv2DGeometry {
        guard kernel.count == 2, inputShape.count == 4 else {
            throw ModelError.unsupported("\(node.op) with a \(kernel.count)-D kernel (node '\(node.name)')")
        }
        let strides = node.ints("strides") ?? [1, 1]
        let dilations = node.ints("dilations") ?? [1, 1]
        var pads = node.ints("pads") ?? [0, 0, 0, 0]
        if pads.isEmpty { pads = [0, 0, 0, 0] }
        let autoPad = node.string("auto_pad") ?? "NOTSET"
        if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
            let ph = Conv2DGeometry.samePadding(input: inputShape[2], kernel: kernel[0], stride: strides[0], dilation: dilations[0])
            let pw = Conv2DGeometry.samePadding(input: inputShape[3], kernel: kernel[1], stride: strides[1], dilation: dilations[1])
            pads = autoPad == "SAME_UPPER" ? [ph.begin, pw.begin, ph.end, pw.end] : [ph.end, pw.end, ph.begin, pw.begin]
        } else if autoPad == "VALID" {
            pads = [0, 0, 0, 0]
        }
        guard pads.count == 4, strides.count == 2, dilations.count == 2, pads.allSatisfy({ (0...1024).contains($0) }),
              strides.allSatisfy({ (1...1024).contains($0) }), dilations.allSatisfy({ (1...1024).contains($0) }),
              kernel.allSatisfy({ (1...1024).contains($0) }) else {
            throw ModelError.malformed("bad kernel/pads/strides/dilations in node '\(node.name)'")
        }
        let g = Conv2DGeometry(kernelH: kernel[0], kernelW: kernel[1], strideH: strides[0], strideW: strides[1],
                               padTop: pads[0], padLeft: pads[1], padBottom: pads[2], padRight: pads[3],
                               dilationH: dilations[0], dilationW: dilations[1])
        let (oh, ow) = g.outputSize(height: inputShape[2], width: inputShape[3])
        guard oh > 0, ow > 0 else {
            throw ModelError.shapeMismatch("\(node.op) '\(node.name)': window larger than its \(inputShape[2])×\(inputShape[3]) input")
        }
        try checkShape([inputShape[0], inputShape[1], oh, ow], node)
        return Conv2DGeometry(kernelH: kernel[0], kernelW: kernel[1], strideH: strides[0], strideW: strides[1],
                              padTop: pads[0], padLeft: pads[1], padBottom: pads[2], padRight: pads[3],
                              dilationH: dilations[0], dilationW: dilations[1])
    }

    static func integerBinary(_ op: String, _ a: IRValue, _ b: IRValue, _ shape: [Int]) throws -> [Int64] {
        let x = a.asInt64, y = b.asInt64
        let count = shape.reduce(1, *)
        func at(_ values: [Int64], _ valueShape: [Int], _ flat: Int) -> Int64 {
            if values.count == 1 { return values[0] }
            if values.count == count { return values[flat] }
            // General broadcast for small shape tensors.
            let padded = [Int](repeating: 1, count: shape.count - valueShape.count) + valueShape
            let strides = Tensor.strides(for: padded)
            var rest = flat, offset = 0
            for (d, size) in shape.enumerated().reversed() {
                let i = rest % size
                rest /= size
                if padded[d] != 1 { offset += i * strides[d] }
            }
            return values[offset]
        }
        return try (0..<count).map { i in
            let p = at(x, a.shape, i), q = at(y, b.shape, i)
            switch op {
            case "Add": return p &+ q
            case "Sub": return p &- q
            case "Mul": return p &* q
            case "Div":
                guard q != 0 else { throw ModelError.malformed("integer division by zero") }
                return p / q
            case "Max": return max(p, q)
            case "Min": return min(p, q)
            default: throw ModelError.unsupported("integer \(op)")
            }
        }
    }

    static func reshaped(_ v: IRValue, _ shape: [Int]) -> IRValue {
        switch v {
        case .float(let t): .float(Tensor(shape: shape, data: t.data))
        case .int64(_, let d): .int64(shape: shape, data: d)
        }
    }

    static func resolveReshape(_ target: [Int], from shape: [Int], allowZero: Bool, node: IRNode) throws -> [Int] {
        var out = target
        let total = shape.reduce(1, *)
        for (i, d) in target.enumerated() where d == 0 && !allowZero {
            guard i < shape.count else { throw ModelError.shapeMismatch("Reshape '\(node.name)': 0 at axis \(i) of rank-\(shape.count) input") }
            out[i] = shape[i]
        }
        if let minus = out.firstIndex(of: -1) {
            let known = out.enumerated().filter { $0.offset != minus }.map(\.element).reduce(1, *)
            guard known > 0, total % known == 0 else { throw ModelError.shapeMismatch("Reshape '\(node.name)': \(shape) to \(target)") }
            out[minus] = total / known
        }
        guard out.reduce(1, *) == total, out.allSatisfy({ $0 >= 0 }) else {
            throw ModelError.shapeMismatch("Reshape '\(node.name)': \(shape) (\(total) values) to \(target)")
        }
        return out
    }

    /// numpy matmul: [..., M, K] × [..., K, N] with the leading (batch) axes broadcast; a rank-1
    /// operand is treated as a row (left) or column (right) vector.
    static func matmul(_ a: Tensor, _ b: Tensor, node: IRNode) throws -> Tensor {
        guard a.rank >= 1, b.rank >= 1 else { throw ModelError.unsupported("MatMul of scalars (node '\(node.name)')") }
        let aShape = a.rank == 1 ? [1] + a.shape : a.shape
        let bShape = b.rank == 1 ? b.shape + [1] : b.shape
        let m = aShape[aShape.count - 2], k = aShape[aShape.count - 1]
        let n = bShape[bShape.count - 1]
        guard bShape[bShape.count - 2] == k else { throw ModelError.shapeMismatch("MatMul '\(node.name)': \(a.shape) × \(b.shape)") }
        let aBatch = Array(aShape.dropLast(2)), bBatch = Array(bShape.dropLast(2))
        guard let batchShape = broadcastShape(aBatch, bBatch) else {
            throw ModelError.shapeMismatch("MatMul '\(node.name)': batch axes \(aBatch) and \(bBatch)")
        }
        try checkShape(batchShape + [m, n], node)
        let batches = batchShape.reduce(1, *)
        var out = [Float](repeating: 0, count: batches * m * n)
        // Offsets of each broadcast batch item in a and b.
        func offsets(_ shape: [Int], matrix: Int) -> [Int] {
            let padded = [Int](repeating: 1, count: batchShape.count - shape.count) + shape
            let strides = Tensor.strides(for: padded)
            return (0..<batches).map { flat in
                var rest = flat, offset = 0
                for d in stride(from: batchShape.count - 1, through: 0, by: -1) {
                    let i = rest % batchShape[d]
                    rest /= batchShape[d]
                    if padded[d] != 1 { offset += i * strides[d] }
                }
                return offset * matrix
            }
        }
        let aOffsets = offsets(aBatch, matrix: m * k), bOffsets = offsets(bBatch, matrix: k * n)
        a.data.withUnsafeBufferPointer { ap in
            b.data.withUnsafeBufferPointer { bp in
                out.withUnsafeMutableBufferPointer { cp in
                    for i in 0..<batches {
                        gemm(transposeA: false, transposeB: false, m: m, n: n, k: k, a: ap.baseAddress! + aOffsets[i], lda: k,
                             b: bp.baseAddress! + bOffsets[i], ldb: n, c: cp.baseAddress! + i * m * n, ldc: n)
                    }
                }
            }
        }
        var shape = batchShape + [m, n]
        if b.rank == 1 { shape.removeLast() }
        if a.rank == 1 { shape.remove(at: shape.count - (b.rank == 1 ? 1 : 2)) }
        return Tensor(shape: shape, data: out)
    }

    static func reduceMean(_ x: Tensor, axes: Set<Int>, keepDims: Bool) -> Tensor {
        let outShapeKeep = x.shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
        var sums = [Float](repeating: 0, count: outShapeKeep.reduce(1, *))
        let outStrides = Tensor.strides(for: outShapeKeep)
        var index = [Int](repeating: 0, count: x.rank)
        for value in x.data {
            var o = 0
            for d in 0..<x.rank where !axes.contains(d) { o += index[d] * outStrides[d] }
            sums[o] += value
            advanceIndex(&index, within: x.shape)
        }
        let n = Float(x.count / max(sums.count, 1))
        let shape = keepDims ? outShapeKeep : x.shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
        return Tensor(shape: shape, data: sums.map { $0 / n })
    }

    /// ONNX Resize on H and W (nearest or linear, the common coordinate transforms).
    static func resize(_ x: Tensor, to outShape: [Int], mode: String, transform: String, nearestMode: String,
                       scaleH: Float, scaleW: Float, node: IRNode) throws -> Tensor {
        let (h, w, oh, ow) = (x.shape[2], x.shape[3], outShape[2], outShape[3])
        func source(_ o: Int, scale: Float, inSize: Int, outSize: Int) throws -> Float {
            let o = Float(o)
            switch transform {
            case "half_pixel": return (o + 0.5) / scale - 0.5
            case "pytorch_half_pixel": return outSize > 1 ? (o + 0.5) / scale - 0.5 : 0
            case "asymmetric": return o / scale
            case "align_corners": return outSize > 1 ? o * Float(inSize - 1) / Float(outSize - 1) : 0
            default: throw ModelError.unsupported("Resize coordinate_transformation_mode '\(transform)' (node '\(node.name)')")
            }
        }
        func nearest(_ v: Float, _ size: Int) throws -> Int {
            let i: Int
            switch nearestMode {
            case "round_prefer_floor": i = v == v.rounded(.down) + 0.5 ? Int(v.rounded(.down)) : Int(v.rounded())
            case "round_prefer_ceil": i = Int(v.rounded(.toNearestOrAwayFromZero))
            case "floor": i = Int(v.rounded(.down))
            case "ceil": i = Int(v.rounded(.up))
            default: throw ModelError.unsupported("Resize nearest_mode '\(nearestMode)' (node '\(node.name)')")
            }
            return min(max(i, 0), size - 1)
        }
        let ys = try (0..<oh).map { try source($0, scale: scaleH, inSize: h, outSize: oh) }
        let xs = try (0..<ow).map { try source($0, scale: scaleW, inSize: w, outSize: ow) }
        var out = [Float](repeating: 0, count: outShape.reduce(1, *))
        let planes = x.shape[0] * x.shape[1]
        switch mode {
        case "nearest":
            let iy = try ys.map { try nearest($0, h) }, ix = try xs.map { try nearest($0, w) }
            x.data.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for p in 0..<planes {
                        for oy in 0..<oh {
                            let line = dst.baseAddress! + (p * oh + oy) * ow
                            if oy > 0 && iy[oy] == iy[oy - 1] {
                                // Upsampling repeats rows: copy the one just written.
                                line.update(from: line - ow, count: ow)
                                continue
                            }
                            let row = src.baseAddress! + (p * h + iy[oy]) * w
                            for ox in 0..<ow { line[ox] = row[ix[ox]] }
                        }
                    }
                }
            }
        case "linear":
            func taps(_ v: Float, _ size: Int) -> (Int, Int, Float) {
                let c = min(max(v, 0), Float(size - 1))
                let i0 = Int(c.rounded(.down)), i1 = min(i0 + 1, size - 1)
                return (i0, i1, c - Float(i0))
            }
            let ty = ys.map { taps($0, h) }, tx = xs.map { taps($0, w) }
            for p in 0..<planes {
                let base = p * h * w
                for oy in 0..<oh {
                    let (y0, y1, fy) = ty[oy]
                    for ox in 0..<ow {
                        let (x0, x1, fx) = tx[ox]
                        let a = x.data[base + y0 * w + x0], b = x.data[base + y0 * w + x1]
                        let c = x.data[base + y1 * w + x0], d = x.data[base + y1 * w + x1]
                        let top = a + (b - a) * fx, bottom = c + (d - c) * fx
                        out[(p * oh + oy) * ow + ox] = top + (bottom - top) * fy
                    }
                }
            }
        default:
            throw ModelError.unsupported("Resize mode '\(mode)' (node '\(node.name)')")
        }
        return Tensor(shape: outShape, data: out)
    }

    static func concat(_ values: [IRValue], axis: Int, node: IRNode) throws -> IRValue {
        let rank = values[0].shape.count
        guard axis >= 0, values.allSatisfy({ v in v.shape.count == rank && (0..<rank).allSatisfy { $0 == axis || v.shape[$0] == values[0].shape[$0] } }),
              axis < max(rank, 1) else {
            throw ModelError.shapeMismatch("Concat '\(node.name)' of \(values.map(\.shape))")
        }
        var shape = values[0].shape
        shape[axis] = values.map { $0.shape[axis] }.reduce(0, +)
        let outer = shape.prefix(axis).reduce(1, *)
        if values.allSatisfy(\.isInteger) {
            var out: [Int64] = []
            for o in 0..<outer {
                for v in values {
                    let block = v.shape.dropFirst(axis).reduce(1, *)
                    out.append(contentsOf: v.asInt64[(o * block)..<((o + 1) * block)])
                }
            }
            return .int64(shape: shape, data: out)
        }
        var out: [Float] = []
        out.reserveCapacity(shape.reduce(1, *))
        let tensors = values.map(\.asFloat)
        for o in 0..<outer {
            for t in tensors {
                let block = t.shape.dropFirst(axis).reduce(1, *)
                out.append(contentsOf: t.data[(o * block)..<((o + 1) * block)])
            }
        }
        return .float(Tensor(shape: shape, data: out))
    }

    static func slice(_ v: IRValue, starts: [Int], ends: [Int], axes: [Int], steps: [Int], node: IRNode) throws -> IRValue {
        let shape = v.shape
        var begin = [Int](repeating: 0, count: shape.count)
        var step = [Int](repeating: 1, count: shape.count)
        var outShape = shape
        for (i, rawAxis) in axes.enumerated() {
            let axis = rawAxis < 0 ? rawAxis + shape.count : rawAxis
            guard axis >= 0, axis < shape.count, steps[i] != 0 else { throw ModelError.malformed("Slice '\(node.name)' axis \(rawAxis)") }
            let dim = shape[axis]
            var s = starts[i] < 0 ? starts[i] + dim : starts[i]
            var e = ends[i] < 0 ? ends[i] + dim : ends[i]
            if steps[i] > 0 {
                s = min(max(s, 0), dim); e = min(max(e, 0), dim)
                outShape[axis] = max(0, (e - s + steps[i] - 1) / steps[i])
            } else {
                s = min(max(s, -1), dim - 1); e = min(max(e, -1), dim - 1)
                outShape[axis] = max(0, (s - e + (-steps[i]) - 1) / (-steps[i]))
            }
            begin[axis] = s
            step[axis] = steps[i]
        }
        let strides = Tensor.strides(for: shape)
        let count = outShape.reduce(1, *)
        var sourceIndex = [Int](repeating: 0, count: count)
        var index = [Int](repeating: 0, count: shape.count)
        for flat in 0..<count {
            var offset = 0
            for d in 0..<shape.count { offset += (begin[d] + index[d] * step[d]) * strides[d] }
            sourceIndex[flat] = offset
            advanceIndex(&index, within: outShape)
        }
        switch v {
        case .float(let t): return .float(Tensor(shape: outShape, data: sourceIndex.map { t.data[$0] }))
        case .int64(_, let d): return .int64(shape: outShape, data: sourceIndex.map { d[$0] })
        }
    }

    static func gather(_ v: IRValue, indices: IRValue, axis: Int, node: IRNode) throws -> IRValue {
        let shape = v.shape
        guard axis < shape.count else { throw ModelError.malformed("Gather '\(node.name)' axis \(axis)") }
        let dim = shape[axis]
        let idx = try indices.asInt64.map { i -> Int in
            let j = Int(i < 0 ? i + Int64(dim) : i)
            guard j >= 0, j < dim else { throw ModelError.shapeMismatch("Gather '\(node.name)': index \(i) out of 0..<\(dim)") }
            return j
        }
        let outer = shape.prefix(axis).reduce(1, *)
        let inner = shape.dropFirst(axis + 1).reduce(1, *)
        let outShape = Array(shape.prefix(axis)) + indices.shape + Array(shape.dropFirst(axis + 1))
        var sources: [Int] = []
        sources.reserveCapacity(outer * idx.count * inner)
        for o in 0..<outer {
            for j in idx {
                let base = (o * dim + j) * inner
                for i in 0..<inner { sources.append(base + i) }
            }
        }
        switch v {
        case .float(let t): return .float(Tensor(shape: outShape, data: sources.map { t.data[$0] }))
        case .int64(_, let d): return .int64(shape: outShape, data: sources.map { d[$0] })
        }
    }

    /// Edge (replicate) or reflect padding: each output index maps back into the input.
    static func padBorder(_ x: Tensor, pads: [Int], reflect: Bool, node: IRNode) throws -> Tensor {
        let rank = x.rank
        guard pads.count == 2 * rank, pads.allSatisfy({ $0 >= 0 }) else { throw ModelError.unsupported("Pad '\(node.name)' with pads \(pads)") }
        let outShape = (0..<rank).map { x.shape[$0] + pads[$0] + pads[$0 + rank] }
        try checkShape(outShape, node)
        guard x.shape.allSatisfy({ $0 > 0 }) else { throw ModelError.shapeMismatch("Pad '\(node.name)' of an empty tensor") }
        let inStrides = x.strides
        var out = [Float](repeating: 0, count: outShape.reduce(1, *))
        var index = [Int](repeating: 0, count: rank)
        for flat in out.indices {
            var source = 0
            for d in 0..<rank {
                var i = index[d] - pads[d]
                let n = x.shape[d]
                if reflect && n > 1 {
                    while i < 0 || i >= n { i = i < 0 ? -i : 2 * (n - 1) - i }
                } else {
                    i = min(max(i, 0), n - 1)
                }
                source += i * inStrides[d]
            }
            out[flat] = x.data[source]
            advanceIndex(&index, within: outShape)
        }
        return Tensor(shape: outShape, data: out)
    }

    static func pad(_ x: Tensor, pads: [Int], value: Float, node: IRNode) throws -> Tensor {
        let rank = x.rank
        guard pads.count == 2 * rank, pads.allSatisfy({ $0 >= 0 }) else {
            throw ModelError.unsupported("Pad '\(node.name)' with pads \(pads) (negative pads are not supported)")
        }
        let outShape = (0..<rank).map { x.shape[$0] + pads[$0] + pads[$0 + rank] }
        try checkShape(outShape, node)
        var out = [Float](repeating: value, count: outShape.reduce(1, *))
        let outStrides = Tensor.strides(for: outShape)
        let inner = x.shape.last ?? 1
        var index = [Int](repeating: 0, count: max(rank - 1, 0))
        var offset = 0
        while offset < x.count {
            var o = pads[rank - 1]
            for d in 0..<(rank - 1) { o += (index[d] + pads[d]) * outStrides[d] }
            for i in 0..<inner { out[o + i] = x.data[offset + i] }
            offset += inner
            advanceIndex(&index, within: x.shape)
        }
        return Tensor(shape: outShape, data: out)
    }
}

/// x · Wᵀ + b over the last axis of x, W packed once (a Gemm or MatMul by constant weights).
struct LinearStep {
    var linear: PackedLinear

    func run(_ x: Tensor, threads: Int) -> Tensor {
        let rows = x.count / max(linear.inputs, 1)
        var out = [Float](repeating: 0, count: rows * linear.outputs)
        x.data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { linear.apply(src.baseAddress!, rows: rows, into: $0.baseAddress!, threads: threads) }
        }
        return Tensor(shape: Array(x.shape.dropLast()) + [linear.outputs], data: out)
    }
}

/// A convolution with its weights prepared once: bias and activation fused.
struct ConvStep {
    var geometry: Conv2DGeometry
    var weight: [Float]
    var bias: [Float]?
    var outChannels: Int
    var groups: Int
    var activation: Activation

    static func make(node: IRNode, inputShape: [Int], weight: Tensor, bias: Tensor?, activation: Activation) throws -> ConvStep {
        guard weight.rank == 4, inputShape.count == 4 else { throw ModelError.unsupported("Conv with rank-\(weight.rank) weights (node '\(node.name)')") }
        let groups = node.int("group", 1)
        guard groups >= 1, inputShape[1] == weight.shape[1] * groups, weight.shape[0] % groups == 0 else {
            throw ModelError.shapeMismatch("Conv '\(node.name)': input \(inputShape), weight \(weight.shape), group \(groups)")
        }
        let kernel = node.ints("kernel_shape") ?? [weight.shape[2], weight.shape[3]]
        guard kernel == [weight.shape[2], weight.shape[3]] else {
            throw ModelError.shapeMismatch("Conv '\(node.name)': kernel_shape \(kernel) but weights \(weight.shape)")
        }
        if let bias, bias.count != weight.shape[0] {
            throw ModelError.shapeMismatch("Conv '\(node.name)': \(bias.count) biases for \(weight.shape[0]) filters")
        }
        let g = try Operators.geometry(node, inputShape: inputShape, kernel: kernel)
        try Operators.checkShape([inputShape[0], weight.shape[0], 1, 1], node)
        return ConvStep(geometry: g, weight: weight.data, bias: bias?.data, outChannels: weight.shape[0], groups: groups, activation: activation)
    }

    /// y·scale + shift after the activation, for scalar Mul/Add steps that follow an activated
    /// convolution (PP-LCNet's learnable affine blocks after every hard-swish). They cannot fold
    /// into the weights the way they do before the activation; applied in place while the
    /// output is still in cache, instead of two more passes that each allocate a tensor.
    var postAffine: (scale: Float, shift: Float)?

    func applyPostAffine(_ out: inout [Float]) {
        guard let (scale, shift) = postAffine else { return }
        out.withUnsafeMutableBufferPointer { p in
            for i in p.indices { p[i] = p[i] * scale + shift }
        }
    }

    /// Weights transformed for Winograd F(2×2, 3×3), set by the planner's last pass (after
    /// BatchNorm and affine folding changed the weights) for the 3×3 stride-1 convolutions.
    var winogradWeights: [Float]?
    /// The same, packed for the AVX2 GEMM kernel.
    var winogradPacked: [Float]?

    /// Weights packed for `PackedConv` (ungrouped convolutions that do not take Winograd), set
    /// by the same pass.
    var packedWeights: [Float]?
    /// A 1×1 convolution over a small plane, packed for `PackedConv.convTransposed` instead.
    var packedTransposed: [Float]?

    mutating func preparePacked(channels: Int, height: Int, width: Int) {
        guard winogradWeights == nil, PackedConv.applies(groups: groups) else { return }
        let depth = channels * geometry.kernelH * geometry.kernelW
        guard weight.count == outChannels * depth else { return }
        let pointwise = geometry == Conv2DGeometry(kernelH: 1, kernelW: 1)
        if pointwise && PackedConv.prefersTransposed(spatial: height * width) {
            packedTransposed = weight.withUnsafeBufferPointer { PackedConv.packTransposed($0.baseAddress!, outChannels: outChannels, channels: channels) }
        } else {
            packedWeights = weight.withUnsafeBufferPointer { PackedConv.pack($0.baseAddress!, outChannels: outChannels, depth: depth) }
        }
    }

    /// A depthwise convolution's weights and biases interleaved eight channels to a vector for
    /// the eight-lane kernel (`VectorDepthwise.interleavedWeights`), set by the same pass.
    var depthwiseInterleaved: [Float]?

    mutating func prepareDepthwise(channels: Int) {
        guard groups == channels, groups == outChannels, groups > 1, weight.count == channels * geometry.kernelH * geometry.kernelW else { return }
        depthwiseInterleaved = weight.withUnsafeBufferPointer { w in
            withOptionalPointer(bias) { b in
                VectorDepthwise.interleavedWeights(w.baseAddress!, bias: b, channels: channels, taps: geometry.kernelH * geometry.kernelW)
            }
        }
    }

    mutating func prepareWinograd(channels: Int) {
        guard Winograd.applies(channels: channels, outChannels: outChannels, groups: groups, geometry: geometry) else { return }
        winogradWeights = weight.withUnsafeBufferPointer { Winograd.transformWeights($0.baseAddress!, outChannels: outChannels, channels: channels) }
        winogradPacked = winogradWeights.flatMap { Winograd.packTransformed($0, outChannels: outChannels, channels: channels) }
    }

    func run(_ x: Tensor, threads: Int) -> Tensor {
        let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = geometry.outputSize(height: height, width: width)
        // Every element is written by the kernel (GEMM with beta 0, or the depthwise loop), so
        // the buffer is not zero-filled first.
        var out = [Float](unsafeUninitializedCapacity: batch * outChannels * oh * ow) { _, count in
            count = batch * outChannels * oh * ow
        }
        let depth = channels * geometry.kernelH * geometry.kernelW
        x.data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                withOptionalPointer(bias) { b in
                    let input = src.baseAddress!, output = dst.baseAddress!
                    // The weights the planner prepared decide the kernel (see `prepareKernelWeights`).
                    if let packedTransposed, packedTransposed.count == PackedConv.transposedCount(outChannels: outChannels, channels: channels) {
                        packedTransposed.withUnsafeBufferPointer {
                            PackedConv.convTransposed(input: input, batch: batch, channels: channels, spatial: oh * ow, packedWeight: $0.baseAddress!,
                                                      outChannels: outChannels, bias: b, activation: activation, output: output, threads: threads)
                        }
                    } else if let packedWeights, packedWeights.count == PackedConv.packedCount(outChannels: outChannels, depth: depth) {
                        packedWeights.withUnsafeBufferPointer {
                            PackedConv.conv(input: input, batch: batch, channels: channels, height: height, width: width, geometry: geometry,
                                            packedWeight: $0.baseAddress!, outChannels: outChannels, bias: b, activation: activation,
                                            output: output, threads: threads)
                        }
                    } else if let winogradWeights, winogradWeights.count == 16 * outChannels * channels {
                        winogradWeights.withUnsafeBufferPointer { u in
                            withOptionalPointer(winogradPacked) { packed in
                                Winograd.conv(input: input, batch: batch, channels: channels, height: height, width: width,
                                              transformedWeights: u.baseAddress!, outChannels: outChannels, bias: b, geometry: geometry,
                                              activation: activation, output: output, threads: threads, packedWeights: packed)
                            }
                        }
                    } else {
                        weight.withUnsafeBufferPointer { w in
                            withOptionalPointer(depthwiseInterleaved) { interleaved in
                                conv2d(input: input, batch: batch, channels: channels, height: height, width: width, weight: w.baseAddress!,
                                       outChannels: outChannels, bias: b, groups: groups, geometry: geometry, activation: activation,
                                       output: output, threads: threads, depthwiseInterleaved: interleaved)
                            }
                        }
                    }
                }
            }
        }
        applyPostAffine(&out)
        return Tensor(shape: [batch, outChannels, oh, ow], data: out)
    }
}
