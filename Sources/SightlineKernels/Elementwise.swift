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

/// out = a ⊙ b with broadcasting. Fast paths (one vectorisable loop per operator each): equal
/// shapes; a scalar on either side; one side constant along the innermost run of the other (a
/// per-channel constant on NCHW, the SE/HardSwish pattern). Everything else walks indices.
public func broadcastBinary(_ op: BinaryOp, a: [Float], aShape: [Int], b: [Float], bShape: [Int], out: inout [Float], outShape: [Int]) {
    let count = outShape.reduce(1, *)
    if out.count != count { out = [Float](unsafeUninitializedCapacity: count) { _, n in n = count } }
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            out.withUnsafeMutableBufferPointer { po in
                let x = pa.baseAddress!, y = pb.baseAddress!, z = po.baseAddress!
                if aShape == bShape {
                    elementwise(op, x, y, z, count)
                } else if b.count == 1 && a.count == count {
                    elementwise(op, x, scalar: y[0], z, count)
                } else if a.count == 1 && b.count == count {
                    elementwise(op, scalar: x[0], y, z, count)
                } else if let (outer, inner, bIsSmall) = runBroadcast(aShape: aShape, bShape: bShape, outShape: outShape) {
                    // One side holds a constant per `inner`-long run of the other.
                    for o in 0..<outer {
                        let run = z + o * inner
                        if bIsSmall {
                            elementwise(op, x + o * inner, scalar: y[o % b.count], run, inner)
                        } else {
                            elementwise(op, scalar: x[o % a.count], y + o * inner, run, inner)
                        }
                    }
                } else if let (rows, row, bIsSmall) = rowBroadcast(aShape: aShape, bShape: bShape, outShape: outShape) {
                    // One side is a single row repeated over the other's leading axes (a bias
                    // [C] added to [N, L, C], the transformer pattern).
                    for r in 0..<rows {
                        if bIsSmall {
                            elementwise(op, x + r * row, y, z + r * row, row)
                        } else {
                            elementwise(op, x, y + r * row, z + r * row, row)
                        }
                    }
                } else {
                    generalBroadcast(op, x, aShape, y, bShape, z, outShape)
                }
            }
        }
    }
}

/// When one operand is the full output shape and the other varies only in axes before a
/// trailing block of size-1 axes (e.g. [1,C,1,1] against [N,C,H,W]), returns (runs, run length,
/// whether b is the small side). The small side's value for run o is small[o % small.count].
func runBroadcast(aShape: [Int], bShape: [Int], outShape: [Int]) -> (Int, Int, Bool)? {
    let rank = outShape.count
    let pa = [Int](repeating: 1, count: rank - aShape.count) + aShape
    let pb = [Int](repeating: 1, count: rank - bShape.count) + bShape
    let (full, small, bIsSmall) = pa == outShape ? (pa, pb, true) : pb == outShape ? (pb, pa, false) : ([], [], false)
    guard !full.isEmpty else { return nil }
    // Trailing axes where the small side is 1; before them, the small side must match fully
    // or be 1 only on leading axes (so o % small.count indexes it).
    var split = rank
    while split > 0 && small[split - 1] == 1 { split -= 1 }
    guard split < rank else { return nil }
    var leading = 0
    while leading < split && small[leading] == 1 { leading += 1 }
    guard (leading..<split).allSatisfy({ small[$0] == full[$0] }) else { return nil }
    let inner = full[split...].reduce(1, *)
    return (full.reduce(1, *) / inner, inner, bIsSmall)
}

/// When one operand is the full output shape and the other is 1 on leading axes and equal to
/// it on the trailing ones, returns (rows, row length, whether b is the small side).
func rowBroadcast(aShape: [Int], bShape: [Int], outShape: [Int]) -> (Int, Int, Bool)? {
    let rank = outShape.count
    let pa = [Int](repeating: 1, count: rank - aShape.count) + aShape
    let pb = [Int](repeating: 1, count: rank - bShape.count) + bShape
    let (full, small, bIsSmall) = pa == outShape ? (pa, pb, true) : pb == outShape ? (pb, pa, false) : ([], [], false)
    guard !full.isEmpty else { return nil }
    var split = 0
    while split < rank && small[split] == 1 { split += 1 }
    guard split > 0, (split..<rank).allSatisfy({ small[$0] == full[$0] }) else { return nil }
    let row = full[split...].reduce(1, *)
    return (full.reduce(1, *) / max(row, 1), row, bIsSmall)
}

@inline(__always)
func elementwise(_ op: BinaryOp, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ z: UnsafeMutablePointer<Float>, _ n: Int) {
    switch op {
    case .add: for i in 0..<n { z[i] = x[i] + y[i] }
    case .sub: for i in 0..<n { z[i] = x[i] - y[i] }
    case .mul: for i in 0..<n { z[i] = x[i] * y[i] }
    case .div: for i in 0..<n { z[i] = x[i] / y[i] }
    case .max: for i in 0..<n { z[i] = Swift.max(x[i], y[i]) }
    case .min: for i in 0..<n { z[i] = Swift.min(x[i], y[i]) }
    case .pow: for i in 0..<n { z[i] = Foundation.pow(x[i], y[i]) }
    }
}

@inline(__always)
func elementwise(_ op: BinaryOp, _ x: UnsafePointer<Float>, scalar s: Float, _ z: UnsafeMutablePointer<Float>, _ n: Int) {
    switch op {
    case .add: for i in 0..<n { z[i] = x[i] + s }
    case .sub: for i in 0..<n { z[i] = x[i] - s }
    case .mul: for i in 0..<n { z[i] = x[i] * s }
    case .div: let r = 1 / s; for i in 0..<n { z[i] = s == 0 ? x[i] / s : x[i] * r }
    case .max: for i in 0..<n { z[i] = Swift.max(x[i], s) }
    case .min: for i in 0..<n { z[i] = Swift.min(x[i], s) }
    case .pow:
        if s == 2 { for i in 0..<n { z[i] = x[i] * x[i] } } else { for i in 0..<n { z[i] = Foundation.pow(x[i], s) } }
    }
}

@inline(__always)
func elementwise(_ op: BinaryOp, scalar s: Float, _ y: UnsafePointer<Float>, _ z: UnsafeMutablePointer<Float>, _ n: Int) {
    switch op {
    case .add: for i in 0..<n { z[i] = s + y[i] }
    case .sub: for i in 0..<n { z[i] = s - y[i] }
    case .mul: for i in 0..<n { z[i] = s * y[i] }
    case .div: for i in 0..<n { z[i] = s / y[i] }
    case .max: for i in 0..<n { z[i] = Swift.max(s, y[i]) }
    case .min: for i in 0..<n { z[i] = Swift.min(s, y[i]) }
    case .pow: for i in 0..<n { z[i] = Foundation.pow(s, y[i]) }
    }
}

/// The general case: walk the output index, innermost axis in a tight loop.
func generalBroadcast(_ op: BinaryOp, _ x: UnsafePointer<Float>, _ aShape: [Int], _ y: UnsafePointer<Float>, _ bShape: [Int],
                      _ z: UnsafeMutablePointer<Float>, _ outShape: [Int]) {
    let count = outShape.reduce(1, *)
    let rank = outShape.count
    let pa = [Int](repeating: 1, count: rank - aShape.count) + aShape
    let pb = [Int](repeating: 1, count: rank - bShape.count) + bShape
    let sa = Tensor.strides(for: pa).enumerated().map { pa[$0.offset] == 1 ? 0 : $0.element }
    let sb = Tensor.strides(for: pb).enumerated().map { pb[$0.offset] == 1 ? 0 : $0.element }
    let inner = outShape.last ?? 1
    let ia = sa.last ?? 0, ib = sb.last ?? 0
    var index = [Int](repeating: 0, count: Swift.max(rank - 1, 0))
    var offset = 0
    while offset < count {
        var oa = 0, ob = 0
        for d in 0..<index.count { oa += index[d] * sa[d]; ob += index[d] * sb[d] }
        for i in 0..<inner { z[offset + i] = op.apply(x[oa + i * ia], y[ob + i * ib]) }
        offset += inner
        advanceIndex(&index, within: outShape)
    }
}

/// Softmax over the innermost `axisSize` values of each of `rows` rows, numerically stable.
public func softmax(_ data: inout [Float], rows: Int, axisSize: Int) {
    data.withUnsafeMutableBufferPointer { p in
        for r in 0..<rows {
            let row = p.baseAddress! + r * axisSize
            let m = laneMax(row, count: axisSize, start: -Float.infinity)
            let sum = expInPlace(row, count: axisSize, minus: m)
            let scale = 1 / sum
            for i in 0..<axisSize { row[i] *= scale }
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
                advanceIndex(&index, within: outShape)
            }
        }
    }
    return (out, outShape)
}

/// y = f(y + r) in place: a residual join computed by the convolution that feeds it (the
/// planner's `fuse-residual-add`), in blocks that stay in L1 between the add and the
/// activation. The same float operations as a separate Add (and Relu) step, so the same bits.
public func residualJoin(_ y: UnsafeMutablePointer<Float>, _ r: UnsafePointer<Float>, count: Int, activation: Activation) {
    var start = 0
    while start < count {
        let n = min(4096, count - start)
        elementwise(.add, y + start, r + start, y + start, n)
        activation.apply(y + start, count: n)
        start += n
    }
}
