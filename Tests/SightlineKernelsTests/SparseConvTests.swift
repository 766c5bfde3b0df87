import Testing
@testable import SightlineKernels

/// Delta convolution kernels against their reference twins.
@Suite struct SparseConvTests {
    struct Rng {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int32(truncatingIfNeeded: state >> 32)) / Float(Int32.max)
        }
        mutating func bool(_ p: Float) -> Bool { (next() + 1) / 2 < p }
    }

    static let geometries: [Conv2DGeometry] = [
        Conv2DGeometry(kernelH: 1, kernelW: 1),
        Conv2DGeometry(kernelH: 3, kernelW: 3, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1),
        Conv2DGeometry(kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padTop: 0, padLeft: 0, padBottom: 1, padRight: 1),
        Conv2DGeometry(kernelH: 5, kernelW: 5, strideH: 2, strideW: 2, padTop: 2, padLeft: 2, padBottom: 2, padRight: 2),
        Conv2DGeometry(kernelH: 7, kernelW: 7, strideH: 2, strideW: 2, padTop: 3, padLeft: 3, padBottom: 3, padRight: 3),
        Conv2DGeometry(kernelH: 3, kernelW: 3, padTop: 2, padLeft: 2, padBottom: 2, padRight: 2, dilationH: 2, dilationW: 2),
        Conv2DGeometry(kernelH: 3, kernelW: 2, strideH: 1, strideW: 3, padTop: 1, padLeft: 0, padBottom: 0, padRight: 1),
    ]

    @Test func maskDilationMatchesBruteForceReceptiveFields() {
        var rng = Rng(state: 7)
        for g in Self.geometries {
            for (h, w, p) in [(17, 23, Float(0.02)), (32, 32, 0.1), (9, 5, 0.3), (14, 14, 0)] {
                let mask = (0..<(h * w)).map { _ in rng.bool(p) }
                let fast = dilateMask(mask, height: h, width: w, geometry: g)
                #expect(fast.mask == referenceDilateMask(mask, height: h, width: w, geometry: g), "\(g) \(h)x\(w)")
                #expect(fast.height * fast.width == fast.mask.count)
            }
        }
    }

    /// Dense (OpenBLAS), depthwise and grouped convolutions, any CPU.
    @Test func maskedConvolutionEqualsDenseAtTheChosenPositionsOnly() throws {
        try checkMasked([(5, 7, 1, false), (6, 6, 6, false), (4, 6, 2, false)])
    }

    /// A dense convolution with its weights packed for the AVX2 kernel.
    @Test(.enabled(if: InstructionSets.avx2, InstructionSets.needsAVX2))
    func maskedConvolutionOnThePackedKernel() throws {
        try checkMasked([(5, 7, 1, true)])
    }

    /// (channels, out channels, groups, packed weights)
    private func checkMasked(_ cases: [(Int, Int, Int, Bool)]) throws {
        var rng = Rng(state: 11)
        for (c, m, groups, packed) in cases {
            for g in Self.geometries {
                let h = 13, w = 11
                let input = (0..<(c * h * w)).map { _ in rng.next() }
                let weight = (0..<(m * (c / groups) * g.kernelH * g.kernelW)).map { _ in rng.next() }
                let bias = (0..<m).map { _ in rng.next() }
                let activation = Activation.clip(min: 0, max: 6)
                let (oh, ow) = g.outputSize(height: h, width: w)
                let dense = referenceConv2d(input: input, batch: 1, channels: c, height: h, width: w, weight: weight, outChannels: m,
                                            bias: bias, groups: groups, geometry: g, activation: activation)
                let positions = (0..<(oh * ow)).filter { _ in rng.bool(0.3) }.map(Int32.init)
                var output = [Float](repeating: -999, count: m * oh * ow)
                if packed { try #require(PackedConv.applies(groups: groups)) }
                let packedWeight = packed
                    ? weight.withUnsafeBufferPointer { PackedConv.pack($0.baseAddress!, outChannels: m, depth: c * g.kernelH * g.kernelW) } : nil
                input.withUnsafeBufferPointer { x in
                    weight.withUnsafeBufferPointer { wt in
                        bias.withUnsafeBufferPointer { b in
                            output.withUnsafeMutableBufferPointer { o in
                                func run(_ p: UnsafePointer<Float>?) {
                                    maskedConv2d(input: x.baseAddress!, channels: c, height: h, width: w, weight: wt.baseAddress!, outChannels: m,
                                                 bias: b.baseAddress!, groups: groups, geometry: g, activation: activation, positions: positions,
                                                 output: o.baseAddress!, packedWeight: p)
                                }
                                withOptionalPointer(packedWeight, run)
                            }
                        }
                    }
                }
                let chosen = Set(positions.map(Int.init))
                var error = 0.0, energy = 1e-30
                var untouched = true
                for channel in 0..<m {
                    for p in 0..<(oh * ow) {
                        let i = channel * oh * ow + p
                        if chosen.contains(p) {
                            error += Double(output[i] - dense[i]) * Double(output[i] - dense[i])
                            energy += Double(dense[i]) * Double(dense[i])
                        } else if output[i] != -999 {
                            untouched = false
                        }
                    }
                }
                #expect(error / energy < 1e-10, "\(c)→\(m) groups \(groups) packed \(packed) \(g)")
                #expect(untouched, "positions outside the mask keep their old values")
            }
        }
    }
}
