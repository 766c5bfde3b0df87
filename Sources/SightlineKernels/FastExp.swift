import Foundation

/// exp(x − shift) in place for softmax logits (shift = the row max, so x − shift ≤ 0; −∞ gives 0), and
/// the sum of the results. x·log2(e) = n + f with |f| ≤ ½ (n by the 1.5·2²³ rounding trick),
/// 2^f by a degree-6 polynomial, 2^n written straight into the exponent bits; relative error
/// ≈ 2e-7. The exp loop has no reduction in it so the compiler vectorises it; the sum runs in
/// eight lanes (a scalar float sum cannot be reordered, so it would not vectorise).
public func expInPlace(_ p: UnsafeMutablePointer<Float>, count: Int, minus shift: Float = 0) -> Float {
    for i in 0..<count { p[i] = fastExp(p[i] - shift) }
    return laneSum(p, count: count)
}

/// exp(x) for x ≤ ~88 (results below 2⁻¹²⁶ flush to 0), branch-free so loops calling it vectorise.
@inline(__always)
public func fastExp(_ x: Float) -> Float {
    let magic: Float = 12_582_912  // 1.5·2²³: adding it rounds to an integer in the low mantissa bits
    let t = min(max(x * 1.4426950408889634, -126), 127)
    let shifted = t + magic
    let n = shifted - magic
    let f = t - n
    let poly = 1 + f * (0.6931471805599453 + f * (0.2402265069591007 + f * (0.05550410866482158
        + f * (0.009618129107628477 + f * (0.0013333558146428443 + f * 0.00015403530393381606)))))
    let exponent = (shifted.bitPattern &- 0x4B40_0000 &+ 127) &<< 23
    return t > -126 ? poly * Float(bitPattern: exponent) : 0
}

/// Σ p[0..<count] in eight lanes.
@inline(__always)
func laneSum(_ p: UnsafePointer<Float>, count: Int) -> Float {
    var lanes = SIMD8<Float>(repeating: 0)
    var i = 0
    while i + 8 <= count {
        lanes += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
        i += 8
    }
    var sum = lanes.sum()
    while i < count { sum += p[i]; i += 1 }
    return sum
}

/// max(p[0..<count]) in eight lanes.
@inline(__always)
func laneMax(_ p: UnsafePointer<Float>, count: Int, start: Float) -> Float {
    var lanes = SIMD8<Float>(repeating: start)
    var i = 0
    while i + 8 <= count {
        // `replacing(with:where:)` compiles to a compare and blend; the generic `pointwiseMax`
        // is not specialised for SIMD8 and costs a call per vector.
        let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
        lanes.replace(with: v, where: v .> lanes)
        i += 8
    }
    var m = lanes.max()
    while i < count { m = max(m, p[i]); i += 1 }
    return m
}
