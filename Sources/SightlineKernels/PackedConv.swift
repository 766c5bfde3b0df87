import CSightlineKernels
import Dispatch
import Foundation

/// Ungrouped convolutions as out[M × OH·OW] = W[M × C·kh·kw] · columns, on the packed-A tiles
/// (`multiplyPackedA`: AVX2 6×16 or AVX-512 12×32): the weights are packed once into 6-row
/// panels when the plan is built; a 1×1 stride-1 convolution reads its input planes in place,
/// any other geometry unfolds column blocks that fit L2 (im2col) or reads rows of a padded copy
/// through a pointer table (implicit im2col); bias and activation are applied while the
/// results are in registers. OpenBLAS, by contrast, packs both operands on every
/// call and leaves bias and activation to another pass over the output.
public enum PackedConv {
    public static func applies(groups: Int) -> Bool { groups == 1 && KernelConfig.current.hasAVX2 }

    /// Weights [M × K] as 6-row panels.
    public static func pack(_ weight: UnsafePointer<Float>, outChannels m: Int, depth k: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: (m + 5) / 6 * 6 * k) { buffer, count in
            sl_pack_rows6(weight, m, k, buffer.baseAddress!)
            count = (m + 5) / 6 * 6 * k
        }
    }

    public static func packedCount(outChannels m: Int, depth k: Int) -> Int { (m + 5) / 6 * 6 * k }

    // MARK: The packed-A tiles

    /// C[m × n] = A · B + bias, activated, for weight panels q0..<q1 (`sl_gemm_packed_a`'s
    /// contract): AVX-512 12×32 tiles where the configuration allows them, else AVX2 6×16 tiles
    /// (which need `scratch`, k·16 floats). Both give the same bits.
    static func multiplyPackedA(
        m: Int, k: Int, packed: UnsafePointer<Float>, panels q0: Int, _ q1: Int, b: UnsafePointer<Float>, ldb: Int, n: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>?, activation: KernelActivation,
        scratch: UnsafeMutablePointer<Float>, kernel tiles: TileKernel = .preferred
    ) {
        if tiles == .avx512 {
            sl_gemm_packed_a_12x32(m, k, packed, q0, q1, b, ldb, n, c, ldc, bias, activation.code, activation.lo, activation.hi)
        } else {
            sl_gemm_packed_a(m, k, packed, q0, q1, b, ldb, n, c, ldc, bias, activation.code, activation.lo, activation.hi, scratch)
        }
    }

    /// One output row of an implicit im2col (`sl_conv_indirect_row`'s contract) on the same
    /// choice of tiles as `multiplyPackedA`.
    static func indirectRow(
        m: Int, k: Int, packed: UnsafePointer<Float>, panels q0: Int, _ q1: Int, rows: UnsafePointer<UnsafePointer<Float>?>,
        width: Int, c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>?, activation: KernelActivation,
        kernel tiles: TileKernel = .preferred
    ) {
        if tiles == .avx512 {
            sl_conv_indirect_row_12x32(m, k, packed, q0, q1, rows, width, c, ldc, bias, activation.code, activation.lo, activation.hi)
        } else {
            sl_conv_indirect_row(m, k, packed, q0, q1, rows, width, c, ldc, bias, activation.code, activation.lo, activation.hi)
        }
    }

    // MARK: Small planes, transposed

    /// Whether a 1×1 convolution over `spatial` positions runs faster transposed (positions in
    /// row panels, output channels in 16-column panels) than in 16-position column panels.
    /// - AVX2 (6-row tiles): when it wastes clearly less work; 7×7 (49 positions) pads to 54
    ///   instead of 64.
    /// - AVX-512 (7-row tiles, no padding on planes 7·k wide): up to 14×14, where it measured
    ///   faster in a model run (EfficientNet's 14×14 layers 2.66 → 2.48 ms); on 28×28 the
    ///   untransposed layout is faster again (0.56 vs 0.61 ms), as its input is read in place
    ///   while the transposed one packs every position.
    public static func prefersTransposed(spatial: Int, kernel: TileKernel = .preferred) -> Bool {
        if kernel == .avx512 {
            return spatial <= 196 && (spatial + 6) / 7 * 7 <= (spatial + 15) / 16 * 16
        }
        guard spatial <= 60, spatial % 16 != 0 else { return false }
        let byColumns = Double((spatial + 15) / 16 * 16), byRows = Double((spatial + 5) / 6 * 6)
        return byColumns > byRows * 1.05
    }

    /// W [M × C] for `convTransposed`: 16-column panels of Wᵀ.
    public static func packTransposed(_ weight: UnsafePointer<Float>, outChannels m: Int, channels c: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: transposedCount(outChannels: m, channels: c)) { buffer, count in
            sl_pack_linear16(weight, m, c, buffer.baseAddress!)
            count = transposedCount(outChannels: m, channels: c)
        }
    }

    public static func transposedCount(outChannels m: Int, channels c: Int) -> Int { (m + 15) / 16 * 16 * c }

    /// A 1×1 stride-1 convolution computed as outᵀ = xᵀ · Wᵀ (see `prefersTransposed`); input
    /// and output stay NCHW. Output-channel panels are split over threads.
    public static func convTransposed(
        input: UnsafePointer<Float>, batch: Int, channels c: Int, spatial: Int, packedWeight: UnsafePointer<Float>,
        outChannels m: Int, bias: UnsafePointer<Float>?, activation: Activation, output: UnsafeMutablePointer<Float>,
        threads: Int = 1, kernel tiles: TileKernel = .preferred
    ) {
        let fused = activation.kernelActivation
        let kernel = fused ?? .none  // nil: applied afterwards, over the output
        let panels = (m + 15) / 16
        let rowPanels = (spatial + tiles.rows - 1) / tiles.rows
        // Threads take position ranges when there are enough (14×14: each packs only its own
        // positions, where splitting the filters made every thread pack all of them), else
        // ranges of output-channel panels (7×7: the weights are the larger operand).
        let byPositions = rowPanels >= 4 * threads
        let parts = max(1, min(threads, byPositions ? rowPanels : panels))
        // AVX-512: blocks of row panels (across images) whose packed copy stays near 512 KB,
        // each meeting every weight panel once, so weights stream once per block rather than
        // once per image (measured neutral on EfficientNet-Lite0 at batch 8, where these
        // tiles are bound by the multiplications).
        let blockPanels = max(10, 131_072 / max(1, tiles.rows * c))
        let shared = SharedBuffers(input: input, weight: packedWeight, bias: bias, output: output)
        let work = { @Sendable (part: Int) in
            let (q0, q1) = byPositions ? (0, panels) : (part * panels / parts, (part + 1) * panels / parts)
            let (p0, p1) = byPositions
                ? (part * rowPanels / parts * tiles.rows, min(spatial, (part + 1) * rowPanels / parts * tiles.rows)) : (0, spatial)
            if tiles == .avx512 {
                let block = min(blockPanels, batch * ((p1 - p0 + 6) / 7))
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: block * 7 * c)
                defer { scratch.deallocate() }
                sl_pointwise_transposed_7x16(batch, spatial, p0, p1, c, shared.input, shared.weight, m, q0, q1, shared.output, shared.bias,
                                             kernel.code, kernel.lo, kernel.hi, scratch, block)
            } else {
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 60 * c)
                defer { scratch.deallocate() }
                for n in 0..<batch {
                    sl_pointwise_transposed(spatial, p0, p1, c, shared.input + n * c * spatial, shared.weight, m, q0, q1,
                                            shared.output + n * m * spatial, shared.bias, kernel.code, kernel.lo, kernel.hi, scratch)
                }
            }
            if fused == nil {
                for n in 0..<batch {
                    for channel in (q0 * 16)..<min(m, q1 * 16) {
                        activation.apply(shared.output + (n * m + channel) * spatial + p0, count: p1 - p0)
                    }
                }
            }
        }
        if parts > 1 { KernelPool.shared.run(parts, work) } else { work(0) }
    }

    /// `indirect`: take the implicit im2col where it applies (the planner's choice per convolution).
    public static func conv(
        input: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int, geometry g: Conv2DGeometry,
        packedWeight: UnsafePointer<Float>, outChannels m: Int, bias: UnsafePointer<Float>?, activation: Activation,
        output: UnsafeMutablePointer<Float>, threads: Int = 1, indirect: Bool = true, kernel tiles: TileKernel = .preferred
    ) {
        let (oh, ow) = g.outputSize(height: height, width: width)
        let spatial = oh * ow
        let depth = channels * g.kernelH * g.kernelW
        let pointwise = g.kernelH == 1 && g.kernelW == 1 && g.strideH == 1 && g.strideW == 1
            && g.padTop == 0 && g.padLeft == 0 && g.padBottom == 0 && g.padRight == 0
        if !pointwise, indirect, indirectApplies(g) {
            indirectConv(input: input, batch: batch, channels: channels, height: height, width: width, geometry: g,
                         packedWeight: packedWeight, outChannels: m, bias: bias, activation: activation, output: output, threads: threads,
                         kernel: tiles)
            return
        }
        let fused = activation.kernelActivation
        let kernel = fused ?? .none  // nil: applied afterwards, over the output
        let panels = (m + 5) / 6
        let shared = SharedBuffers(input: input, weight: packedWeight, bias: bias, output: output)

        /// Rows (panels q0..<q1) × columns p0..<p1 of one image's output, from B = the input
        /// planes (pointwise) or unfolded columns (ldb = their count).
        @Sendable func multiply(_ b: UnsafePointer<Float>, ldb: Int, image n: Int, columns p0: Int, _ p1: Int,
                                panels q0: Int, _ q1: Int, scratch: UnsafeMutablePointer<Float>) {
            let y = shared.output + n * m * spatial + p0
            multiplyPackedA(m: m, k: depth, packed: shared.weight, panels: q0, q1, b: b, ldb: ldb, n: p1 - p0, c: y, ldc: spatial,
                            bias: shared.bias, activation: kernel, scratch: scratch, kernel: tiles)
            if fused == nil {
                for row in (q0 * 6)..<min(m, q1 * 6) { activation.apply(y + row * spatial, count: p1 - p0) }
            }
        }

        if threads > 1 && spatial < 64 * threads && panels >= 2 {
            // Late layers: few positions, many filters. Unfold once per image, split the filters.
            let columns = pointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: depth * spatial)
            defer { columns?.deallocate() }
            let parts = min(threads, panels)
            for n in 0..<batch {
                let image = input + n * channels * height * width
                if let columns {
                    im2col(image, channels: channels, height: height, width: width, geometry: g, outH: oh, outW: ow,
                           from: 0, to: spatial, columns: columns)
                }
                let b = SharedBuffers(input: UnsafePointer(columns ?? UnsafeMutablePointer(mutating: image)), weight: packedWeight,
                                      bias: nil, output: output)
                KernelPool.shared.run(parts) { part in
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: depth * 16)
                    defer { scratch.deallocate() }
                    multiply(b.input, ldb: spatial, image: n, columns: 0, spatial,
                             panels: part * panels / parts, (part + 1) * panels / parts, scratch: scratch)
                }
            }
            return
        }
        // Column blocks: one per thread for a 1×1 convolution; unfolded blocks small enough
        // to stay in L2 (~512 KB) otherwise, since im2col of an early layer would stream
        // megabytes through memory twice.
        let perThread = (spatial + max(1, min(threads, spatial / 64)) - 1) / max(1, min(threads, spatial / 64))
        let blockSize = pointwise ? perThread : max(64, min(perThread, 131_072 / max(depth, 1)))
        let blocks = (spatial + blockSize - 1) / blockSize
        let work = { @Sendable (block: Int) in
            let p0 = block * blockSize, p1 = min(spatial, p0 + blockSize)
            guard p0 < p1 else { return }
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: depth * 16)
            let columns = pointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: depth * (p1 - p0))
            defer { scratch.deallocate(); columns?.deallocate() }
            for n in 0..<batch {
                let image = shared.input + n * channels * height * width
                if let columns {
                    im2col(image, channels: channels, height: height, width: width, geometry: g, outH: oh, outW: ow,
                           from: p0, to: p1, columns: columns)
                    multiply(columns, ldb: p1 - p0, image: n, columns: p0, p1, panels: 0, panels, scratch: scratch)
                } else {
                    multiply(image + p0, ldb: spatial, image: n, columns: p0, p1, panels: 0, panels, scratch: scratch)
                }
            }
        }
        if blocks == 1 || threads == 1 {
            for block in 0..<blocks { work(block) }
        } else {
            KernelPool.shared.run(blocks, work)
        }
    }

    // MARK: Implicit im2col

    /// Geometries `indirectConv` takes: kernels larger than 1×1 (a strided 1×1 reads a quarter
    /// of its input, which im2col copies and the planes would copy whole: 0.84 → 1.5 ms on
    /// open_nsfw's 512→1024), dilation 1, horizontal stride 1 or 2 (the column phase split of
    /// `sl_depthwise_fill`), any vertical stride. The planner decides per convolution (its
    /// `indirect-im2col` pass; switched off, they stay on im2col for A/B runs).
    public static func indirectApplies(_ g: Conv2DGeometry) -> Bool {
        g.kernelH * g.kernelW > 1 && g.dilationH == 1 && g.dilationW == 1 && (g.strideW == 1 || g.strideW == 2)
    }

    /// A convolution without unfolding: each input plane is copied once, zero-padded and split
    /// into column phases for stride 2 (`sl_depthwise_fill`'s layout), so the kh·kw taps of 16
    /// neighbouring outputs are 16 contiguous floats of that copy. Per output row a table of
    /// C·kh·kw row pointers stands in for im2col's columns (`sl_conv_indirect_row`). im2col wrote
    /// and re-read kh·kw times the input: on stems (3 channels, 147 taps for open_nsfw's 7×7)
    /// that copy cost about as much as the multiplications. Output rows are split over threads.
    static func indirectConv(
        input: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int, geometry g: Conv2DGeometry,
        packedWeight: UnsafePointer<Float>, outChannels m: Int, bias: UnsafePointer<Float>?, activation: Activation,
        output: UnsafeMutablePointer<Float>, threads: Int, kernel tiles: TileKernel
    ) {
        let (oh, ow) = g.outputSize(height: height, width: width)
        let spatial = oh * ow
        let (kh, kw, sh, sw) = (g.kernelH, g.kernelW, g.strideH, g.strideW)
        let depth = channels * kh * kw
        let fused = activation.kernelActivation
        let kernel = fused ?? .none  // nil: applied afterwards, over the output
        let panels = (m + 5) / 6
        // Rows are read up to a whole block of 16 outputs past the last one.
        let phaseWidth = (ow + 15) / 16 * 16 + (kw - 1) / sw + 1
        let rowSize = sw * phaseWidth
        // Output rows go in bands whose input rows (all channels) stay near 256 KB: a whole
        // padded copy of PP-OCR det's 736² stem input was 7 MB per call, which glibc kept
        // (+130 MB resident in the live pipeline).
        let band = max(1, min(oh, (65_536 / max(channels * rowSize, 1) - kh) / sh + 1))
        let bandRows = (band - 1) * sh + kh
        let shared = SharedBuffers(input: input, weight: packedWeight, bias: bias, output: output)
        let parts = max(1, min(threads, oh))
        for n in 0..<batch {
            let imageOffset = n * m * spatial
            let work = { @Sendable (part: Int) in
                let table = UnsafeMutablePointer<UnsafePointer<Float>?>.allocate(capacity: depth)
                let planes = UnsafeMutablePointer<Float>.allocate(capacity: channels * bandRows * rowSize)
                defer { table.deallocate(); planes.deallocate() }
                planes.initialize(repeating: 0, count: channels * bandRows * rowSize)
                let image = shared.input + n * channels * height * width
                var r0 = part * oh / parts
                let end = (part + 1) * oh / parts
                while r0 < end {
                    let r1 = min(end, r0 + band)
                    // Padded rows r0·sh ..< (r1−1)·sh + kh; those that are image rows are copied,
                    // the others (top and bottom padding) zeroed, as a previous band left them.
                    let first = r0 * sh, count = (r1 - 1 - r0) * sh + kh
                    let y0 = max(0, first - g.padTop), y1 = min(height, first + count - g.padTop)
                    let top = max(0, min(count, y0 + g.padTop - first))
                    let filled = max(0, y1 - y0)
                    for c in 0..<channels {
                        let plane = planes + c * bandRows * rowSize
                        plane.update(repeating: 0, count: top * rowSize)
                        (plane + (top + filled) * rowSize).update(repeating: 0, count: (count - top - filled) * rowSize)
                        if filled > 0 {
                            sl_depthwise_fill(image + c * height * width + y0 * width, filled, width, top, g.padLeft, Int32(sw), plane, phaseWidth)
                        }
                    }
                    for oy in r0..<r1 {
                        var t = 0
                        for c in 0..<channels {
                            for ky in 0..<kh {
                                let row = UnsafePointer(planes) + c * bandRows * rowSize + ((oy - r0) * sh + ky) * rowSize
                                for kx in 0..<kw {
                                    table[t] = row + (kx % sw) * phaseWidth + kx / sw
                                    t += 1
                                }
                            }
                        }
                        let y = shared.output + imageOffset + oy * ow
                        indirectRow(m: m, k: depth, packed: shared.weight, panels: 0, panels, rows: table, width: ow, c: y, ldc: spatial,
                                    bias: shared.bias, activation: kernel, kernel: tiles)
                        if fused == nil {
                            for row in 0..<m { activation.apply(y + row * spatial, count: ow) }
                        }
                    }
                    r0 = r1
                }
            }
            if parts > 1 { KernelPool.shared.run(parts, work) } else { work(0) }
        }
    }
}
