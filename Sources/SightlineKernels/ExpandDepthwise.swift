import CSightlineKernels
import Foundation

/// A 1×1 convolution ("expand") whose output only feeds a depthwise convolution, as in every
/// MobileNet/EfficientNet block, computed without materialising the expanded tensor in NCHW:
/// for each panel of 16 expanded channels, the GEMM tiles (AVX-512 7×16, or AVX2 6×16) write
/// straight into the depthwise kernel's interleaved layout (two padded planes of 8 channels,
/// which stay in L2), and the depthwise kernel runs on them at once (on AVX-512 over both
/// planes in one pass, 16 channels per vector). Unfused, the expanded
/// tensor (4.8 MB at 112² × 96) went to memory and came back, and every group was transposed
/// into that layout again by `sl_depthwise8_fill`. Only where `applies` (16·k expanded
/// channels, a depthwise geometry the eight-lane kernel takes); the planner's
/// `fuse-expand-depthwise` pass decides, and switched off keeps the two convolutions apart
/// (A/B runs).
public enum ExpandDepthwise {
    public static func applies(expandedChannels: Int, height: Int, width: Int, depthwise g: Conv2DGeometry) -> Bool {
        KernelConfig.current.hasAVX2 && expandedChannels % 16 == 0 && VectorDepthwise.applies(g)
            && VectorDepthwise.interleavedScratch(height: height, width: width, geometry: g) != nil
    }

    /// x [batch × channels × height × width] → depthwise(act(expand(x))) [batch × expanded × oh × ow].
    /// `expandWeights`: W [expanded × channels] packed by `PackedConv.packTransposed`;
    /// `interleaved`: the depthwise weights and biases from `VectorDepthwise.interleavedWeights`.
    public static func run(
        input: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int,
        expandWeights: UnsafePointer<Float>, expandBias: UnsafePointer<Float>?, expandActivation: KernelActivation,
        expandedChannels c: Int, depthwise g: Conv2DGeometry, interleaved: UnsafePointer<Float>, activation: Activation,
        output: UnsafeMutablePointer<Float>, threads: Int, kernel tiles: TileKernel = .preferred
    ) {
        guard let size = VectorDepthwise.interleavedScratch(height: height, width: width, geometry: g) else { return }
        let positions = height * width
        let rows = tiles.rows
        let rowPanels = (positions + rows - 1) / rows
        // The packing and expand kernels of the tile: 7-row panels on AVX-512, 6-row on AVX2.
        let (packPositions, expand) = tiles == .avx512
            ? (sl_pack_positions7, sl_expand_interleaved_7x16) : (sl_pack_positions6, sl_expand_interleaved_6x16)
        let (oh, ow) = g.outputSize(height: height, width: width)
        let taps = g.kernelH * g.kernelW
        let fused = activation.kernelActivation
        let kernel = fused ?? .none  // nil: applied afterwards, over the output
        let panels = c / 16
        // AVX-512: a panel's two groups in one depthwise pass (sl_depthwise16_pair).
        let pairs = tiles == .avx512 && taps <= 64
        let groupFloats = size.rows * size.columns * 8
        let packed = UnsafeMutablePointer<Float>.allocate(capacity: rowPanels * channels * rows)
        defer { packed.deallocate() }
        let shared = SharedBuffers(input: input, weight: expandWeights, bias: expandBias, output: output)
        // The packed xᵀ (written by the packing threads, read by all) and the depthwise weights.
        let packedShared = SharedBuffers(input: UnsafePointer(packed), weight: interleaved, bias: nil, output: packed)
        for n in 0..<batch {
            // xᵀ in row panels, once per image: every panel of expanded channels reads all of it.
            let packParts = max(1, min(threads, rowPanels / 16))
            let pack = { @Sendable (part: Int) in
                packPositions(shared.input + n * channels * positions, positions, channels,
                              part * rowPanels / packParts, (part + 1) * rowPanels / packParts, packedShared.output)
            }
            if packParts > 1 { KernelPool.shared.run(packParts, pack) } else { pack(0) }
            // Threads take ranges of 8-channel groups: with an odd number of panels (144
            // channels: 9) the panel in the middle is expanded by both threads, each running the
            // depthwise half it owns, instead of one thread taking a whole panel more.
            let groups = 2 * panels
            let parts = max(1, min(threads, groups))
            let work = { @Sendable (part: Int) in
                let planes = UnsafeMutablePointer<Float>.allocate(capacity: 2 * groupFloats)
                defer { planes.deallocate() }
                VectorDepthwise.zeroPads(planes, size: size, geometry: g, height: height, width: width)
                VectorDepthwise.zeroPads(planes + groupFloats, size: size, geometry: g, height: height, width: width)
                let g0 = part * groups / parts, g1 = (part + 1) * groups / parts
                for q in (g0 / 2)..<((g1 + 1) / 2) {
                    expand(packedShared.input, positions, width, channels, shared.weight, q, shared.bias,
                           expandActivation.code, expandActivation.lo, expandActivation.hi, planes, groupFloats,
                           size.columns, g.padTop, g.padLeft)
                    if pairs && (g0..<g1).contains(2 * q) && (g0..<g1).contains(2 * q + 1) {
                        // Both groups of the panel on this thread: one AVX-512 pass over the two.
                        let weight8 = packedShared.weight + 2 * q * (taps + 1) * 8
                        let out = shared.output + (n * c + 2 * q * 8) * oh * ow
                        sl_depthwise16_pair(planes, groupFloats, size.columns, Int32(g.strideW), g.strideH, Int32(g.kernelH),
                                            Int32(g.kernelW), weight8, weight8 + (taps + 1) * 8, kernel.code, kernel.lo, kernel.hi,
                                            out, oh * ow, oh, ow)
                        if fused == nil { activation.apply(out, count: 16 * oh * ow) }
                        continue
                    }
                    for half in 0..<2 where (g0..<g1).contains(2 * q + half) {
                        let group = 2 * q + half
                        let weight8 = packedShared.weight + group * (taps + 1) * 8
                        let out = shared.output + (n * c + group * 8) * oh * ow
                        sl_depthwise8_planes(planes + half * groupFloats, size.columns, Int32(g.strideW), g.strideH, Int32(g.kernelH),
                                             Int32(g.kernelW), weight8, weight8 + taps * 8, kernel.code, kernel.lo, kernel.hi,
                                             out, oh * ow, 8, oh, ow)
                        if fused == nil { activation.apply(out, count: 8 * oh * ow) }
                    }
                }
            }
            if parts > 1 { KernelPool.shared.run(parts, work) } else { work(0) }
        }
    }
}
