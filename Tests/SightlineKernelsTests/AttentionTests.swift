import Foundation
import Testing
import SightlineTestSupport
import SightlineCore
@testable import SightlineKernels

@Suite struct AttentionTests {
    struct Case: Sendable, CustomStringConvertible {
        var batch: Int, length: Int, heads: Int, headDim: Int, padded: Bool, causal: Bool
        var description: String { "b\(batch) L\(length) h\(heads) d\(headDim)\(padded ? " padded" : "")\(causal ? " causal" : "")" }
    }

    static let cases: [Case] = [
        Case(batch: 1, length: 1, heads: 1, headDim: 4, padded: false, causal: false),
        Case(batch: 2, length: 7, heads: 3, headDim: 8, padded: true, causal: false),
        Case(batch: 2, length: 33, heads: 2, headDim: 16, padded: true, causal: false),
        Case(batch: 1, length: 130, heads: 4, headDim: 32, padded: false, causal: true),
        Case(batch: 3, length: 300, heads: 2, headDim: 32, padded: true, causal: false),
        Case(batch: 2, length: 257, heads: 12, headDim: 32, padded: true, causal: true),
    ]

    @Test(arguments: cases)
    func fusedMatchesNaive(_ t: Case) {
        let width = t.heads * t.headDim
        let count = t.batch * t.length * width
        var seed: UInt64 = UInt64(t.length * 31 + t.headDim)
        func random() -> Float {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int(seed >> 40) % 2001 - 1000) / 500
        }
        let q = (0..<count).map { _ in random() }, k = (0..<count).map { _ in random() }, v = (0..<count).map { _ in random() }
        // Padding: each batch item keeps a different number of real tokens (at least one).
        let mask: [Float]? = t.padded ? (0..<(t.batch * t.length)).map { i in
            let b = i / t.length, position = i % t.length
            return position < max(1, t.length - b * (t.length / 3)) ? 1 : 0
        } : nil
        let expected = referenceAttention(q: q, k: k, v: v, batch: t.batch, length: t.length, heads: t.heads, headDim: t.headDim,
                                          rowStride: width, keyMask: mask, causal: t.causal)
        let maskValues = mask ?? []
        func fused(threads: Int) -> [Float] {
            var actual = [Float](repeating: .nan, count: count)
            q.withUnsafeBufferPointer { qp in
                k.withUnsafeBufferPointer { kp in
                    v.withUnsafeBufferPointer { vp in
                        maskValues.withUnsafeBufferPointer { mp in
                            actual.withUnsafeMutableBufferPointer { op in
                                attention(q: qp.baseAddress!, k: kp.baseAddress!, v: vp.baseAddress!, out: op.baseAddress!, batch: t.batch,
                                          length: t.length, heads: t.heads, headDim: t.headDim, rowStride: width,
                                          keyMask: mask == nil ? nil : mp.baseAddress, causal: t.causal, threads: threads)
                            }
                        }
                    }
                }
            }
            return actual
        }
        let actual = fused(threads: 1)
        #expect(normalizedMSE(actual, expected) < 1e-10, "\(t)")
        // Split over threads, each (batch, head) pair is computed as it is on one.
        for threads in [2, 3] { #expect(fused(threads: threads) == actual, "\(t), \(threads) threads") }
    }

    /// The split "add & norm" (with AVX2, its eight-lane rows) against the residual added and the
    /// rows normalised one by one by the reference; every split gives the same bits as one part.
    @Test(arguments: [(1, 8), (17, 384), (64, 384), (250, 20), (5, 13), (3, 1)])
    func residualLayerNormMatchesAddThenNorm(_ size: (Int, Int)) {
        let (rows, width) = size
        var seed: UInt64 = UInt64(rows * 7 + width)
        func random() -> Float {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int(seed >> 40) % 2001 - 1000) / 250
        }
        let x = (0..<(rows * width)).map { _ in random() }, residual = (0..<(rows * width)).map { _ in random() }
        let gamma = (0..<width).map { _ in random() }, beta = (0..<width).map { _ in random() }
        var expected = zip(x, residual).map { $0 + $1 }
        expected.withUnsafeMutableBufferPointer { layerNorm($0.baseAddress!, rows: rows, width: width, gamma: gamma, beta: beta, epsilon: 1e-12) }
        var first: [Float]?
        for threads in [1, 2, 3] {
            var actual = x
            residual.withUnsafeBufferPointer { r in
                actual.withUnsafeMutableBufferPointer {
                    residualLayerNorm($0.baseAddress!, adding: r.baseAddress, rows: rows, width: width, gamma: gamma, beta: beta, epsilon: 1e-12,
                                      threads: threads)
                }
            }
            #expect(normalizedMSE(actual, expected) < 1e-12, "\(rows)×\(width), \(threads) threads")
            #expect(zip(actual, expected).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) }, "\(rows)×\(width), \(threads) threads")
            if let first { #expect(actual == first, "\(rows)×\(width), \(threads) threads") } else { first = actual }
        }
        var alone = x, reference = x
        alone.withUnsafeMutableBufferPointer { residualLayerNorm($0.baseAddress!, adding: nil, rows: rows, width: width, gamma: gamma, beta: beta, epsilon: 1e-12, threads: 2) }
        reference.withUnsafeMutableBufferPointer { layerNorm($0.baseAddress!, rows: rows, width: width, gamma: gamma, beta: beta, epsilon: 1e-12) }
        #expect(width == 1 || normalizedMSE(alone, reference) < 1e-12)
        #expect(zip(alone, reference).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) })
    }

    @Test func fastExpMatchesLibm() {
        var values: [Float] = (0..<2000).map { -Float($0) * 0.05 } + [-.infinity, -87, -100, -126.5, 0]
        let expected = values.map { $0 == -.infinity ? Float(0) : Foundation.exp($0 - 0) }
        let sum = values.withUnsafeMutableBufferPointer { expInPlace($0.baseAddress!, count: $0.count) }
        // Relative error ≤ 1e-6 where softmax weights matter (x ≥ −16, weights ≥ 1e-7); far below
        // that, float32 range reduction of x·log2(e) limits it to a few 1e-6, absolute ≤ 1e-12.
        var worst: Float = 0
        for (i, (got, want)) in zip(values, expected).enumerated() where i < 2000 && i <= 320 {
            worst = max(worst, abs(got - want) / want)
        }
        #expect(worst <= 1e-6, "relative error \(worst)")
        #expect(zip(values, expected).allSatisfy { $1 >= 1e-6 || abs($0 - $1) <= 1e-12 })
        #expect(values[2000] == 0 && abs(values[2004] - 1) < 1e-6)  // exp(−∞) = 0, exp(0) = 1
        #expect(abs(sum - expected.reduce(0, +)) < 1e-4)
        var shifted: [Float] = [3, 2, 1]
        _ = shifted.withUnsafeMutableBufferPointer { expInPlace($0.baseAddress!, count: 3, minus: 3) }
        #expect(abs(shifted[1] - Foundation.exp(-1)) < 1e-7)
    }

    @Test func fastGeluMatchesLibmGelu() {
        var fast = (0..<4001).map { Float($0 - 2000) / 250 }  // −8 … 8
        var reference = fast
        fast.withUnsafeMutableBufferPointer { geluErf($0.baseAddress!, count: $0.count) }
        reference.withUnsafeMutableBufferPointer { referenceGeluErf($0.baseAddress!, count: $0.count) }
        #expect(zip(fast, reference).allSatisfy { abs($0 - $1) <= 2e-6 * max(1, abs($1)) })
    }

    @Test func layerNormAndGelu() {
        var x: [Float] = [1, 2, 3, 4, -1, -1, -1, -1]
        let gamma: [Float] = [1, 1, 2, 2], beta: [Float] = [0, 0, 0, 1]
        x.withUnsafeMutableBufferPointer { layerNorm($0.baseAddress!, rows: 2, width: 4, gamma: gamma, beta: beta, epsilon: 1e-12) }
        let s = Float(1.25).squareRoot()
        #expect(abs(x[0] - (-1.5 / s)) < 1e-5 && abs(x[3] - (2 * 1.5 / s + 1)) < 1e-5)
        #expect(x[4] == 0 && x[7] == 1)
        var g: [Float] = [-3, 0, 1, 3]
        g.withUnsafeMutableBufferPointer { geluErf($0.baseAddress!, count: 4) }
        #expect(abs(g[2] - 0.8413447) < 1e-6 && g[1] == 0 && abs(g[0] + 0.0040497) < 1e-6)
    }
}
