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

    /// Add, Sub, Mul, Div, Pow, Max, Min.
    func binary() throws -> [IRValue] {
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
        if node.int("sightline.relu", 0) == 1 {
            out.withUnsafeMutableBufferPointer { Activation.relu.apply($0.baseAddress!, count: $0.count) }
        }
        return [.float(Tensor(shape: shape, data: out))]
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
