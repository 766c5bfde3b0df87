import CSightlineKernels
import Foundation

/// Shape contract for `attention` (one call covers a batch and all heads):
///   q, k, v: [batch, length, heads·headDim] rows of `rowStride` floats (heads interleaved, as a
///            Linear layer writes them — no transposes needed), head h at column offset h·headDim;
///   keyMask: [batch, length], 1 for real tokens and 0 for padding (nil: all real);
///   out:     same layout as q.
/// out = softmax(q·kᵀ·scale + mask) · v per batch and head, computed in query blocks × key blocks
/// with an online softmax (running max and sum), so the length×length score matrix is never
/// materialised: memory is O(length), not O(length²). The (batch, head) pairs are split over
/// `threads` (KernelPool).
public func attention(
    q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
    batch: Int, length: Int, heads: Int, headDim: Int, rowStride: Int,
    keyMask: UnsafePointer<Float>?, causal: Bool = false, scale: Float? = nil, threads: Int = 1
) {
    struct Operands: @unchecked Sendable {
        let q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>
        let keyMask: UnsafePointer<Float>?
    }
    let operands = Operands(q: q, k: k, v: v, out: out, keyMask: keyMask)
    let scale = scale ?? 1 / Float(headDim).squareRoot()
    let pairs = batch * heads
    // The (sentence, head) pairs are independent: each part takes a run of them with its own
    // scratch. On one core, MiniLM's attention left the other waiting (4 % of its 2-thread time).
    let parts = max(1, min(threads, pairs))
    let work = { @Sendable (part: Int) in
        let first = part * pairs / parts, end = (part + 1) * pairs / parts
        guard end > first else { return }
        let (q, k, v, out, keyMask) = (operands.q, operands.k, operands.v, operands.out, operands.keyMask)
        let queryBlock = 32, keyBlock = 128
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: queryBlock * keyBlock)
        let accumulator = UnsafeMutablePointer<Float>.allocate(capacity: queryBlock * headDim)
        let rowMax = UnsafeMutablePointer<Float>.allocate(capacity: queryBlock)
        let rowSum = UnsafeMutablePointer<Float>.allocate(capacity: queryBlock)
        defer { scores.deallocate(); accumulator.deallocate(); rowMax.deallocate(); rowSum.deallocate() }
        for pair in first..<end {
            let b = pair / heads, h = pair % heads
            // Padding keys contribute nothing; skipping whole padded tails saves their work too.
            var validKeys = length
            if let keyMask {
                while validKeys > 0 && keyMask[b * length + validKeys - 1] == 0 { validKeys -= 1 }
            }
            let base = b * length * rowStride + h * headDim
            var q0 = 0
            while q0 < length {
                let qn = min(queryBlock, length - q0)
                accumulator.update(repeating: 0, count: qn * headDim)
                rowMax.update(repeating: -.infinity, count: qn)
                rowSum.update(repeating: 0, count: qn)
                var k0 = 0
                let keyLimit = causal ? min(validKeys, q0 + qn) : validKeys
                while k0 < keyLimit {
                    let kn = min(keyBlock, keyLimit - k0)
                    // scores[qn × kn] = Q_block · K_blockᵀ
                    gemm(transposeA: false, transposeB: true, m: qn, n: kn, k: headDim, alpha: scale,
                         a: q + base + q0 * rowStride, lda: rowStride, b: k + base + k0 * rowStride, ldb: rowStride,
                         c: scores, ldc: kn)
                    for i in 0..<qn {
                        let row = scores + i * kn
                        if let keyMask {
                            for j in 0..<kn where keyMask[b * length + k0 + j] == 0 { row[j] = -.infinity }
                        }
                        if causal {
                            for j in 0..<kn where k0 + j > q0 + i { row[j] = -.infinity }
                        }
                        let m = laneMax(row, count: kn, start: rowMax[i])
                        if m == -.infinity {  // every key so far is masked for this query
                            row.update(repeating: 0, count: kn)
                            continue
                        }
                        let correction = rowMax[i] == -.infinity ? 0 : exp(rowMax[i] - m)
                        let sum = expInPlace(row, count: kn, minus: m)  // masked (−∞) scores become 0
                        rowSum[i] = rowSum[i] * correction + sum
                        rowMax[i] = m
                        let acc = accumulator + i * headDim
                        if correction != 1 { for d in 0..<headDim { acc[d] *= correction } }
                    }
                    // accumulator += P · V_block
                    gemm(transposeA: false, transposeB: false, m: qn, n: headDim, k: kn, a: scores, lda: kn,
                         b: v + base + k0 * rowStride, ldb: rowStride, beta: 1, c: accumulator, ldc: headDim)
                    k0 += kn
                }
                for i in 0..<qn {
                    let dst = out + base + (q0 + i) * rowStride
                    let acc = accumulator + i * headDim
                    let inv = rowSum[i] > 0 ? 1 / rowSum[i] : 0
                    for d in 0..<headDim { dst[d] = acc[d] * inv }
                }
                q0 += qn
            }
        }
    }
    if parts > 1 { KernelPool.shared.run(parts, work) } else { work(0) }
}

/// The reference twin of `attention`: the full score matrix, a plain softmax, Double sums.
public func referenceAttention(
    q: [Float], k: [Float], v: [Float], batch: Int, length: Int, heads: Int, headDim: Int, rowStride: Int,
    keyMask: [Float]?, causal: Bool = false
) -> [Float] {
    var out = [Float](repeating: 0, count: q.count)
    let scale = 1 / Double(headDim).squareRoot()
    for b in 0..<batch {
        for h in 0..<heads {
            let base = b * length * rowStride + h * headDim
            for i in 0..<length {
                var scores = [Double](repeating: -.infinity, count: length)
                for j in 0..<length {
                    if let keyMask, keyMask[b * length + j] == 0 { continue }
                    if causal && j > i { continue }
                    var s = 0.0
                    for d in 0..<headDim { s += Double(q[base + i * rowStride + d]) * Double(k[base + j * rowStride + d]) }
                    scores[j] = s * scale
                }
                let m = scores.max() ?? 0
                guard m > -.infinity else { continue }
                let e = scores.map { $0 == -.infinity ? 0 : exp($0 - m) }
                let sum = e.reduce(0, +)
                for d in 0..<headDim {
                    var acc = 0.0
                    for j in 0..<length where e[j] > 0 { acc += e[j] * Double(v[base + j * rowStride + d]) }
                    out[base + i * rowStride + d] = Float(acc / sum)
                }
            }
        }
    }
    return out
}

/// LayerNorm over the last axis: rows of `width` values, y = (x − mean)/√(var + eps)·γ + β, in place.
public func layerNorm(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, epsilon: Float) {
    for r in 0..<rows {
        let row = x + r * width
        var mean: Float = 0
        for i in 0..<width { mean += row[i] }
        mean /= Float(width)
        var variance: Float = 0
        for i in 0..<width { let d = row[i] - mean; variance += d * d }
        variance /= Float(width)
        let inv = 1 / (variance + epsilon).squareRoot()
        for i in 0..<width { row[i] = (row[i] - mean) * inv * gamma[i] + beta[i] }
    }
}

/// x += residual (when given), then LayerNorm over each row (`layerNorm`), in place, with the
/// rows split over `threads` (KernelPool): a transformer block's "add & norm". MiniLM ran both
/// on one core, 5 % of its 2-thread time at batch 8. With AVX2, each part's rows go through
/// `sl_residual_layer_norm` (its sums on eight lanes); `layerNorm` is the reference.
public func residualLayerNorm(_ x: UnsafeMutablePointer<Float>, adding residual: UnsafePointer<Float>?, rows: Int, width: Int,
                              gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, epsilon: Float, threads: Int = 1) {
    struct Rows: @unchecked Sendable {
        let x: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>
    }
    let shared = Rows(x: x, residual: residual, gamma: gamma, beta: beta)
    let vectorised = KernelConfig.current.hasAVX2
    // At least 16 rows a part: below that the fork/join costs more than the rows.
    let parts = max(1, min(threads, rows / 16))
    let work = { @Sendable (part: Int) in
        let r0 = part * rows / parts, r1 = (part + 1) * rows / parts
        guard r1 > r0 else { return }
        let start = shared.x + r0 * width
        if vectorised {
            sl_residual_layer_norm(start, shared.residual.map { $0 + r0 * width }, r1 - r0, width, shared.gamma, shared.beta, epsilon)
            return
        }
        if let residual = shared.residual {
            let from = residual + r0 * width
            for i in 0..<((r1 - r0) * width) { start[i] += from[i] }
        }
        layerNorm(start, rows: r1 - r0, width: width, gamma: shared.gamma, beta: shared.beta, epsilon: epsilon)
    }
    if parts > 1 { KernelPool.shared.run(parts, work) } else { work(0) }
}

/// GELU, exact (erf) form, in place: x·½·(1 + erf(x/√2)). erf by Abramowitz & Stegun 7.1.26
/// (absolute error ≤ 1.5e-7) so the loop vectorises; `referenceGeluErf` is the libm twin.
public func geluErf(_ x: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count {
        let v = x[i]
        let z = abs(v) * 0.70710678118654752
        let t = 1 / (1 + 0.3275911 * z)
        let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
        let e = 1 - poly * fastExp(-z * z)
        let erfValue = v < 0 ? -e : e
        x[i] = 0.5 * v * (1 + erfValue)
    }
}

/// The reference twin of `geluErf`, with libm's erf.
public func referenceGeluErf(_ x: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { x[i] = 0.5 * x[i] * (1 + erf(x[i] * 0.70710678118654752)) }
}

/// GELU, tanh approximation, in place.
public func geluTanh(_ x: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count {
        let v = x[i]
        x[i] = 0.5 * v * (1 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)))
    }
}

/// Attention the usual unfused way — the whole length×length score matrix per head through
/// GEMM, a row softmax, GEMM again. The baseline `sightline bench attention` measures the fused
/// kernel against (fast, but O(length²) memory).
public func unfusedAttention(
    q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
    batch: Int, length: Int, heads: Int, headDim: Int, rowStride: Int, keyMask: UnsafePointer<Float>?
) {
    let scale = 1 / Float(headDim).squareRoot()
    let scores = UnsafeMutablePointer<Float>.allocate(capacity: length * length)
    defer { scores.deallocate() }
    for b in 0..<batch {
        for h in 0..<heads {
            let base = b * length * rowStride + h * headDim
            gemm(transposeA: false, transposeB: true, m: length, n: length, k: headDim, alpha: scale,
                 a: q + base, lda: rowStride, b: k + base, ldb: rowStride, c: scores, ldc: length)
            for i in 0..<length {
                let row = scores + i * length
                if let keyMask { for j in 0..<length where keyMask[b * length + j] == 0 { row[j] = -.infinity } }
                var m = -Float.infinity
                for j in 0..<length { m = max(m, row[j]) }
                var sum: Float = 0
                for j in 0..<length { row[j] = row[j] == -.infinity ? 0 : exp(row[j] - m); sum += row[j] }
                for j in 0..<length { row[j] /= sum }
            }
            gemm(transposeA: false, transposeB: false, m: length, n: headDim, k: length, a: scores, lda: length,
                 b: v + base, ldb: rowStride, c: out + base, ldc: rowStride)
        }
    }
}
