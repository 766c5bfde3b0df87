import Testing
import SightlineCore
import SightlineTestSupport
@testable import SightlineKernels

/// The fused 1×1 → depthwise kernel against the two reference convolutions.
@Suite struct ExpandDepthwiseTests {
    struct Case: Sendable, CustomStringConvertible {
        var batch: Int, channels: Int, expanded: Int, height: Int, width: Int
        var geometry: Conv2DGeometry
        var expandActivation: Activation, activation: Activation
        var description: String { "n\(batch) c\(channels)→\(expanded) \(height)×\(width) \(geometry.kernelH)x\(geometry.kernelW)/\(geometry.strideH)" }
    }

    /// 3×3 stride 1 with the xᵀ packing split over threads (16×16: 37 row panels); TF-SAME
    /// stride 2 (pads only bottom and right) on an odd 9-wide plane, where 7-row panels cross
    /// image rows; 5×5 stride 2 with a depthwise activation applied after the kernel (sigmoid);
    /// a 7×7 plane with EfficientNet's 5×5 and several panels of expanded channels.
    static let cases: [Case] = [
        Case(batch: 1, channels: 16, expanded: 32, height: 16, width: 16,
             geometry: Conv2DGeometry(kernelH: 3, kernelW: 3, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1),
             expandActivation: .clip(min: 0, max: 6), activation: .clip(min: 0, max: 6)),
        Case(batch: 2, channels: 5, expanded: 48, height: 10, width: 9,
             geometry: Conv2DGeometry(kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padBottom: 1, padRight: 1),
             expandActivation: .relu, activation: .none),
        Case(batch: 1, channels: 24, expanded: 16, height: 15, width: 15,
             geometry: Conv2DGeometry(kernelH: 5, kernelW: 5, strideH: 2, strideW: 2, padTop: 2, padLeft: 2, padBottom: 2, padRight: 2),
             expandActivation: .none, activation: .sigmoid),
        Case(batch: 1, channels: 40, expanded: 64, height: 7, width: 7,
             geometry: Conv2DGeometry(kernelH: 5, kernelW: 5, padTop: 2, padLeft: 2, padBottom: 2, padRight: 2),
             expandActivation: .clip(min: 0, max: 6), activation: .clip(min: 0, max: 6)),
    ]

    @Test(.enabled(if: InstructionSets.avx512, InstructionSets.needsAVX512), arguments: cases)
    func fusedMatchesTheTwoConvolutions(_ t: Case) throws { try check(t, tiles: .avx512) }

    /// The same on the AVX2 6×16 tiles, whose 6-row panels cross image rows on every plane here.
    @Test(.enabled(if: InstructionSets.avx2, InstructionSets.needsAVX2), arguments: cases)
    func fusedOnAVX2TilesMatchesTheTwoConvolutions(_ t: Case) throws { try check(t, tiles: .avx2) }

    private func check(_ t: Case, tiles: TileKernel) throws {
        try #require(ExpandDepthwise.applies(expandedChannels: t.expanded, height: t.height, width: t.width, depthwise: t.geometry))
        let x = random(t.batch * t.channels * t.height * t.width, seed: 41)
        let w = random(t.expanded * t.channels, seed: 42), b = random(t.expanded, seed: 43)
        let taps = t.geometry.kernelH * t.geometry.kernelW
        let dw = random(t.expanded * taps, seed: 44), dwBias = random(t.expanded, seed: 45)
        let expanded = referenceConv2d(input: x, batch: t.batch, channels: t.channels, height: t.height, width: t.width, weight: w,
                                       outChannels: t.expanded, bias: b, groups: 1, geometry: Conv2DGeometry(kernelH: 1, kernelW: 1),
                                       activation: t.expandActivation)
        let expected = referenceConv2d(input: expanded, batch: t.batch, channels: t.expanded, height: t.height, width: t.width,
                                       weight: dw, outChannels: t.expanded, bias: dwBias, groups: t.expanded, geometry: t.geometry,
                                       activation: t.activation)
        let panels = w.withUnsafeBufferPointer { PackedConv.packTransposed($0.baseAddress!, outChannels: t.expanded, channels: t.channels) }
        let interleaved = dw.withUnsafeBufferPointer { d in
            dwBias.withUnsafeBufferPointer { VectorDepthwise.interleavedWeights(d.baseAddress!, bias: $0.baseAddress!, channels: t.expanded, taps: taps) }
        }
        let expandActivation = try #require(t.expandActivation.kernelActivation)
        for threads in [1, 2, 3] {
            var actual = [Float](repeating: .nan, count: expected.count)
            x.withUnsafeBufferPointer { xp in
                panels.withUnsafeBufferPointer { wp in
                    b.withUnsafeBufferPointer { bp in
                        interleaved.withUnsafeBufferPointer { ip in
                            actual.withUnsafeMutableBufferPointer {
                                ExpandDepthwise.run(input: xp.baseAddress!, batch: t.batch, channels: t.channels, height: t.height, width: t.width,
                                                    expandWeights: wp.baseAddress!, expandBias: bp.baseAddress!, expandActivation: expandActivation,
                                                    expandedChannels: t.expanded, depthwise: t.geometry, interleaved: ip.baseAddress!,
                                                    activation: t.activation, output: $0.baseAddress!, threads: threads,
                                                    kernel: tiles)
                            }
                        }
                    }
                }
            }
            #expect(normalizedMSE(actual, expected) < 1e-10, "\(t), \(threads) threads, \(tiles)")
        }
    }
}
