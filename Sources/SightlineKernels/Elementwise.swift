import Foundation
import SightlineCore

public enum BinaryOp: Sendable {
    case add, sub, mul, div, pow, max, min

    @inline(__always)
    public func apply(_ a: Float, _ b: Float) -> Float {
        switch self {
        case .add: a + b
        case .sub: a - b
        case .mul: a * b
        case .div: a / b
        case .pow: Foundation.pow(a, b)
        case .max: Swift.max(a, b)
        case .min: Swift.min(a, b)
        }
    }
}

/// Numpy-style broadcast of two shapes, or nil when they do not broadcast.
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
    let rank = max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        guard da == db || da == 1 || db == 1 else { return nil }
        out[i] = Swift.max(da, db)
    }
    return out
}

/// out = a ⊙ b with broadcasting. Fast paths: equal shapes, a scalar side, and a side that
/// is constant along the innermost run (per-channel constants in NCHW); otherwise an index walk.
public func broadcastBinary(_ op: BinaryOp, a: [Float], aShape: [Int], b: [Float], bShape: [Int], out: inout [Float], outShape: [Int]) {
    let count = outShape.reduce(1, *)
    if out.count != count { out = [Float](unsafeUninitializedCapacity: count) { _, n in n = count } }
    if aShape == bShape {
        // One loop per operator, so each vectorises (a switch per element would not).
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { po in
                    let x = pa.baseAddress!, y = pb.baseAddress!, z = po.baseAddress!
                    switch op {
                    case .add: for i in 0..<count { z[i] = x[i] + y[i] }
                    case .sub: for i in 0..<count { z[i] = x[i] - y[i] }
                    case .mul: for i in 0..<count { z[i] = x[i] * y[i] }
                    default: for i in 0..<count { z[i] = op.apply(x[i], y[i]) }
                    }
                }
            }
        }
        return
    }
    if b.count == 1 {
        let s = b[0]
        for i in 0..<count { out[i] = op.apply(a[i], s) }
        if a.count == count { return }
    }
    if a.count == 1 && b.count == count {
        let s = a[0]
        for i in 0..<count { out[i] = op.apply(s, b[i]) }
        return
    }
    let rank = outShape.count
    let pa = [Int](repeating: 1, count: rank - aShape.count) + aShape
    let pb = [Int](repeating: 1, count: rank - bShape.count) + bShape
    let sa = Tensor.strides(for: pa).enumerated().map { pa[$0.offset] == 1 ? 0 : $0.element }
    let sb = Tensor.strides(for: pb).enumerated().map { pb[$0.offset] == 1 ? 0 : $0.element }
    // Innermost run over which both inputs advance uniformly.
    let inner = outShape.last ?? 1
    let ia = sa.last ?? 0, ib = sb.last ?? 0
    var index = [Int](repeating: 0, count: Swift.max(rank - 1, 0))
    var offset = 0
    a.withUnsafeBufferPointer { ap in
        b.withUnsafeBufferPointer { bp in
            out.withUnsafeMutableBufferPointer { op2 in
                while offset < count {
                    var oa = 0, ob = 0
                    for d in 0..<index.count { oa += index[d] * sa[d]; ob += index[d] * sb[d] }
                    for i in 0..<inner { op2[offset + i] = op.apply(ap[oa + i * ia], bp[ob + i * ib]) }
                    offset += inner
                    var d = index.count - 1
                    while d >= 0 {
                        index[d] += 1
                        if index[d] < outShape[d] { break }
                        index[d] = 0
                        d -= 1
                    }
                }
            }
        }
    }
}

/// Softmax over the innermost `axisSize` values of each of `rows` rows, numerically stable.
public func softmax(_ data: inout [Float], rows: Int, axisSize: Int) {
    data.withUnsafeMutableBufferPointer { p in
        for r in 0..<rows {
            let row = p.baseAddress! + r * axisSize
            var m = -Float.infinity
            for i in 0..<axisSize { m = Swift.max(m, row[i]) }
            var sum: Float = 0
            for i in 0..<axisSize { row[i] = exp(row[i] - m); sum += row[i] }
            for i in 0..<axisSize { row[i] /= sum }
        }
    }
}

/// out = input permuted by `perm` (out axis i is input axis perm[i]).
public func transpose(_ input: [Float], shape: [Int], perm: [Int]) -> (data: [Float], shape: [Int]) {
    let outShape = perm.map { shape[$0] }
    let inStrides = Tensor.strides(for: shape)
    let count = input.count
    var out = [Float](repeating: 0, count: count)
    let rank = shape.count
    guard rank > 0, count > 0 else { return (input, outShape) }
    let strideInOut = perm.map { inStrides[$0] }
    let inner = outShape[rank - 1]
    let innerStride = strideInOut[rank - 1]
    var index = [Int](repeating: 0, count: rank - 1)
    var offset = 0
    input.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
            while offset < count {
                var base = 0
                for d in 0..<(rank - 1) { base += index[d] * strideInOut[d] }
                for i in 0..<inner { dst[offset + i] = src[base + i * innerStride] }
                offset += inner
                var d = rank - 2
                while d >= 0 {
                    index[d] += 1
                    if index[d] < outShape[d] { break }
                    index[d] = 0
                    d -= 1
                }
            }
        }
    }
    return (out, outShape)
}
