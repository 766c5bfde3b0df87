import Foundation
import SightlineCore
import SightlineKernels

/// Matrix products, reductions and normalisations over the last axes.
extension OperatorCall {
    /// LayerNormalization.
    func layerNormalization() throws -> [IRValue] {
        let x = try floatInput(0), gamma = try floatInput(1)
        let beta = inputs.count > 2 ? inputs[2]?.asFloat : nil
        var axis = node.int("axis", -1)
        if axis < 0 { axis += x.rank }
        guard axis == x.rank - 1, let width = x.shape.last, gamma.count == width, beta.map({ $0.count == width }) ?? true else {
            throw ModelError.unsupported("LayerNormalization over axis \(axis) of \(x.shape) (node '\(node.name)')")
        }
        return [.float(Operators.fusedLayerNorm(x, gamma: gamma, beta: beta ?? Tensor(zeros: [width]), epsilon: node.float("epsilon", 1e-5)))]
    }

    /// ReduceMean.
    func reduceMean() throws -> [IRValue] {
        let x = try floatInput(0)
        let axes = (node.ints("axes") ?? optionalInts(1) ?? Array(0..<x.rank)).map { $0 < 0 ? $0 + x.rank : $0 }
        let keep = node.int("keepdims", 1) != 0
        if Set(axes) == Set((x.rank - axes.count)..<x.rank) && !axes.isEmpty {
            // Innermost axes: a plain mean per row (global average pooling).
            let inner = axes.map { x.shape[$0] }.reduce(1, *)
            let rows = x.count / max(inner, 1)
            var out = [Float](repeating: 0, count: rows)
            x.data.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { SightlineKernels.globalAveragePool(input: src.baseAddress!, planes: rows, spatial: inner, output: $0.baseAddress!) }
            }
            let shape = keep ? x.shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element } : Array(x.shape.prefix(x.rank - axes.count))
            return [.float(Tensor(shape: shape, data: out))]
        }
        return [.float(Operators.reduceMean(x, axes: Set(axes), keepDims: keep))]
    }

    /// MatMul.
    func matMul() throws -> [IRValue] {
        return [.float(try Operators.matmul(try floatInput(0), try floatInput(1), node: node))]
    }

    /// Gemm.
    func gemm() throws -> [IRValue] {
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
                    SightlineKernels.gemm(transposeA: transA, transposeB: transB, m: m, n: n, k: k, a: ap.baseAddress!, lda: a.shape[1],
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
    }

    /// Softmax.
    func softmax() throws -> [IRValue] {
        var x = try floatInput(0)
        var axis = node.int("axis", -1)
        if axis < 0 { axis += x.rank }
        guard axis == x.rank - 1 else { throw ModelError.unsupported("Softmax over axis \(axis) of rank \(x.rank) (node '\(node.name)')") }
        let size = x.shape.last ?? 1
        SightlineKernels.softmax(&x.data, rows: x.count / max(size, 1), axisSize: size)
        return [.float(x)]
    }
}
