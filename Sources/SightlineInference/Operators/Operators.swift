import Foundation
import SightlineCore
import SightlineKernels

/// One operator application: the node (its attributes) and its input values. The operator
/// implementations are methods on it, in one file per family (Operators/*Operators.swift).
struct OperatorCall {
    let node: IRNode
    let inputs: [IRValue?]

    func input(_ i: Int) throws -> IRValue {
        guard i < inputs.count, let v = inputs[i] else { throw ModelError.missing("input \(i) of \(node.op) node '\(node.name)'") }
        return v
    }

    func floatInput(_ i: Int) throws -> Tensor { try input(i).asFloat }

    /// An optional input read as integers (shapes, axes, pads given as tensors).
    func optionalInts(_ i: Int) -> [Int]? {
        guard i < inputs.count, let v = inputs[i] else { return nil }
        return v.asInt64.map { Int($0) }
    }
}

/// Reference semantics of every supported ONNX operator on concrete values. Used to fold
/// constants, to discover shapes while planning, and to run the steps no fused kernel covers.
/// Operators dispatch through `table` (op type → implementation); `supported` is its keys.
enum Operators {
    typealias Implementation = @Sendable (OperatorCall) throws -> [IRValue]

    static let table: [String: Implementation] = [
        "Identity": { try $0.identity() },
        "Dropout": { try $0.identity() },
        "Cast": { try $0.cast() },
        "Add": { try $0.binary() },
        "Sub": { try $0.binary() },
        "Mul": { try $0.binary() },
        "Div": { try $0.binary() },
        "Pow": { try $0.binary() },
        "Max": { try $0.binary() },
        "Min": { try $0.binary() },
        "Sqrt": { try $0.unaryMath() },
        "Neg": { try $0.unaryMath() },
        "Exp": { try $0.unaryMath() },
        "Erf": { try $0.unaryMath() },
        "Tanh": { try $0.unaryMath() },
        "Relu": { try $0.activationFunction() },
        "Clip": { try $0.activationFunction() },
        "Sigmoid": { try $0.activationFunction() },
        "HardSigmoid": { try $0.activationFunction() },
        "HardSwish": { try $0.activationFunction() },
        "LeakyRelu": { try $0.activationFunction() },
        "Conv": { try $0.conv() },
        "LayerNormalization": { try $0.layerNormalization() },
        "ConvTranspose": { try $0.convTranspose() },
        "Resize": { try $0.resize() },
        "MaxPool": { try $0.pool() },
        "AveragePool": { try $0.pool() },
        "GlobalAveragePool": { try $0.globalAveragePool() },
        "ReduceMean": { try $0.reduceMean() },
        "MatMul": { try $0.matMul() },
        "Gemm": { try $0.gemm() },
        "Softmax": { try $0.softmax() },
        "BatchNormalization": { try $0.batchNormalization() },
        "Transpose": { try $0.transpose() },
        "Reshape": { try $0.reshape() },
        "Flatten": { try $0.flatten() },
        "Squeeze": { try $0.squeeze() },
        "Unsqueeze": { try $0.unsqueeze() },
        "Concat": { try $0.concat() },
        "Slice": { try $0.slice() },
        "Gather": { try $0.gather() },
        "Shape": { try $0.shape() },
        "ConstantOfShape": { try $0.constantOfShape() },
        "Pad": { try $0.pad() },
        "DepthToSpace": { try $0.depthToSpace() },
    ]

    static let supported = Set(table.keys)

    static func evaluate(_ node: IRNode, _ inputs: [IRValue?]) throws -> [IRValue] {
        guard let implementation = table[node.op] else { throw ModelError.unsupportedOperator(node.op, node: node.name) }
        return try implementation(OperatorCall(node: node, inputs: inputs))
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
                        SightlineKernels.gemm(transposeA: false, transposeB: false, m: m, n: n, k: k, a: ap.baseAddress! + aOffsets[i], lda: k,
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
            // Separable: each input row interpolated across once (into `across`), then pairs of
            // those rows down. The same arithmetic, in the same order, as the four-tap formula.
            var across = [Float](repeating: 0, count: h * ow)
            x.data.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    across.withUnsafeMutableBufferPointer { rows in
                        guard let source = src.baseAddress, let target = dst.baseAddress, let row = rows.baseAddress else { return }
                        for p in 0..<planes {
                            let plane = source + p * h * w
                            for y in 0..<h {
                                let line = plane + y * w, into = row + y * ow
                                for ox in 0..<ow {
                                    let (x0, x1, fx) = tx[ox]
                                    into[ox] = line[x0] + (line[x1] - line[x0]) * fx
                                }
                            }
                            for oy in 0..<oh {
                                let (y0, y1, fy) = ty[oy]
                                let top = row + y0 * ow, bottom = row + y1 * ow, into = target + (p * oh + oy) * ow
                                for ox in 0..<ow { into[ox] = top[ox] + (bottom[ox] - top[ox]) * fy }
                            }
                        }
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
        try checkShape(outShape, node)
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
