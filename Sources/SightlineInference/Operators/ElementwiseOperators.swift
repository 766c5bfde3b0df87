import Foundation
import SightlineCore
import SightlineKernels

/// Elementwise operators: aliases, casts, broadcast arithmetic, math functions, activations, and inference-mode BatchNormalization.
extension OperatorCall {
    /// Identity, Dropout.
    func identity() throws -> [IRValue] {
        return [try input(0)]
    }

    /// Cast.
    func cast() throws -> [IRValue] {
        let to = node.int("to", 1)
        let v = try input(0)
        switch to {
        case 1, 10, 11: return [.float(v.asFloat)]
        case 6, 7, 9, 2, 3, 4, 5, 12, 13:
            if case .float(let t) = v { return [.int64(shape: t.shape, data: t.data.map { to == 9 ? ($0 != 0 ? 1 : 0) : Int64($0) })] }
            return [v]
        default: throw ModelError.unsupported("Cast to ONNX type \(to) (node '\(node.name)')")
        }
    }

    /// Add, Sub, Mul, Div, Pow, Max, Min; and the fused forms the passes make of Add and Mul.
    func binary() throws -> [IRValue] {
        if let rows = node.ints("sightline.upsample_rows"), let columns = node.ints("sightline.upsample_columns") {
            return [.float(try upsampledAdd(rows: rows, columns: columns))]
        }
        if node.int("sightline.scaled_residual", 0) == 1 { return [.float(try scaledResidual())] }
        let a = try input(0), b = try input(1)
        guard let shape = broadcastShape(a.shape, b.shape) else {
            throw ModelError.shapeMismatch("\(node.op) '\(node.name)': \(a.shape) and \(b.shape) do not broadcast")
        }
        // Two small tensors from the file ([N, 1] and [1, M]) broadcast to N × M: capped like
        // every other output sized by the file's contents.
        try Operators.checkShape(shape, node)
        if a.isInteger && b.isInteger {
            return [.int64(shape: shape, data: try Operators.integerBinary(node.op, a, b, shape))]
        }
        let op: BinaryOp = ["Add": .add, "Sub": .sub, "Mul": .mul, "Div": .div, "Pow": .pow, "Max": .max, "Min": .min][node.op] ?? .add
        let ta = a.asFloat, tb = b.asFloat
        var out: [Float] = []
        broadcastBinary(op, a: ta.data, aShape: ta.shape, b: tb.data, bShape: tb.shape, out: &out, outShape: shape)
        applyFusedRelu(&out)
        return [.float(Tensor(shape: shape, data: out))]
    }

    /// The Relu `fuse-elementwise-relu` (or a pass after it) moved into this step, if any.
    private func applyFusedRelu(_ out: inout [Float]) {
        if node.int("sightline.relu", 0) == 1 {
            out.withUnsafeMutableBufferPointer { Activation.relu.apply($0.baseAddress!, count: $0.count) }
        }
    }

    /// `fuse-upsample-add`: input 0 (full size) + input 1 (the small map) read at row `rows[y]`
    /// and column `columns[x]`, the nearest Resize's own index tables.
    private func upsampledAdd(rows: [Int], columns: [Int]) throws -> Tensor {
        let large = try floatInput(0), small = try floatInput(1)
        guard large.rank == 4, small.rank == 4, large.shape[0] == small.shape[0], large.shape[1] == small.shape[1],
              rows.count == large.shape[2], columns.count == large.shape[3],
              rows.allSatisfy({ (0..<small.shape[2]).contains($0) }), columns.allSatisfy({ (0..<small.shape[3]).contains($0) }) else {
            throw ModelError.shapeMismatch("Add '\(node.name)': \(large.shape) and upsampled \(small.shape)")
        }
        let (h, w, oh, ow) = (small.shape[2], small.shape[3], large.shape[2], large.shape[3])
        let planes = large.shape[0] * large.shape[1]
        let doubled = columns.indices.allSatisfy { columns[$0] == $0 / 2 }
        var out = [Float](unsafeUninitializedCapacity: large.count) { _, n in n = large.count }
        large.data.withUnsafeBufferPointer { ap in
            small.data.withUnsafeBufferPointer { sp in
                out.withUnsafeMutableBufferPointer { op in
                    for p in 0..<planes {
                        for oy in 0..<oh {
                            let a = ap.baseAddress! + (p * oh + oy) * ow, o = op.baseAddress! + (p * oh + oy) * ow
                            let source = sp.baseAddress! + (p * h + rows[oy]) * w
                            var ox = 0
                            if doubled {
                                // 2× along the row (feature pyramids): four source values make eight outputs.
                                while ox + 8 <= ow {
                                    let v = UnsafeRawPointer(source + ox / 2).loadUnaligned(as: SIMD4<Float>.self)
                                    let pairs = SIMD8<Float>(v[0], v[0], v[1], v[1], v[2], v[2], v[3], v[3])
                                    let sum = UnsafeRawPointer(a + ox).loadUnaligned(as: SIMD8<Float>.self) + pairs
                                    UnsafeMutableRawPointer(o + ox).storeBytes(of: sum, as: SIMD8<Float>.self)
                                    ox += 8
                                }
                            }
                            while ox < ow {
                                o[ox] = a[ox] + source[columns[ox]]
                                ox += 1
                            }
                        }
                    }
                }
            }
        }
        applyFusedRelu(&out)
        return Tensor(shape: large.shape, data: out)
    }

    /// `fuse-scaled-residual`: x + x·s, s one value per image and channel; rounded as the Mul
    /// and the Add it replaces were (the product, then the sum).
    private func scaledResidual() throws -> Tensor {
        let x = try floatInput(0), s = try floatInput(1)
        guard x.rank == 4, s.shape == [x.shape[0], x.shape[1], 1, 1] else {
            throw ModelError.shapeMismatch("Mul '\(node.name)': \(x.shape) scaled by \(s.shape)")
        }
        let spatial = x.shape[2] * x.shape[3]
        var out = [Float](unsafeUninitializedCapacity: x.count) { _, n in n = x.count }
        x.data.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                for plane in 0..<s.count {
                    let k = s.data[plane], a = xp.baseAddress! + plane * spatial, o = op.baseAddress! + plane * spatial
                    for i in 0..<spatial {
                        let product = a[i] * k
                        o[i] = a[i] + product
                    }
                }
            }
        }
        applyFusedRelu(&out)
        return Tensor(shape: x.shape, data: out)
    }

    /// Sqrt, Neg, Exp, Erf, Tanh.
    func unaryMath() throws -> [IRValue] {
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
    }

    /// Relu, Clip, Sigmoid, HardSigmoid, HardSwish, LeakyRelu.
    func activationFunction() throws -> [IRValue] {
        var t = try floatInput(0)
        if node.op == "LeakyRelu" {
            let alpha = node.float("alpha", 0.01)
            for i in t.data.indices where t.data[i] < 0 { t.data[i] *= alpha }
            return [.float(t)]
        }
        let activation = try Operators.activation(node, inputs)
        t.data.withUnsafeMutableBufferPointer { activation.apply($0.baseAddress!, count: $0.count) }
        return [.float(t)]
    }

    /// BatchNormalization.
    func batchNormalization() throws -> [IRValue] {
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
    }
}
