import CSightlineKernels
import Dispatch

/// Winograd F(2×2, 3×3) for 3×3 stride-1 convolutions (Lavin & Gray, 2016): each 2×2 output
/// tile comes from a 4×4 input tile with 16 multiplies per input–output channel pair instead of
/// 36, as 16 GEMMs of [M × C] · [C × tiles] between the transformed weights (U = G g Gᵀ) and
/// the transformed input tiles (V = Bᵀ d B), then Y = Aᵀ M A. Tiles are processed in blocks
/// that fit the caches; blocks are split across threads.
///
///   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]
///   G  = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]
///   Aᵀ = [1 1 1 0; 0 1 −1 −1]
public enum Winograd {
    /// The output tile. F(4×4, 3×3) (points 0, ±1, ±2, ∞; Lavin & Gray) does 36 products per
    /// channel pair for 16 outputs instead of 16 for 4: 0.56× the multiply-adds and 0.56× the
    /// transformed input per output pixel, for 2.25× the transformed weights. It runs only on the
    /// packed AVX2 path (`packTransformed` gives nil elsewhere).
    ///
    ///   Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1]
    ///   G  = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1⁄24 1⁄12 ⅙; 1⁄24 −1⁄12 ⅙; 0 0 1]
    ///   Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]
    public enum Tile: Int, Sendable {
        case two = 2, four = 4
        /// Products per channel pair: the input tile's (size + 2)².
        public var taps: Int { (rawValue + 2) * (rawValue + 2) }
    }

    /// Whether a convolution can take this path (and is big enough to gain from it).
    public static func applies(channels: Int, outChannels: Int, groups: Int, geometry g: Conv2DGeometry) -> Bool {
        g.kernelH == 3 && g.kernelW == 3 && g.strideH == 1 && g.strideW == 1 && g.dilationH == 1 && g.dilationW == 1
            && groups == 1 && channels >= 8 && outChannels >= 8
    }

    /// U = G g Gᵀ for every (output, input) channel pair, laid out [16][M][C].
    public static func transformWeights(_ weight: UnsafePointer<Float>, outChannels m: Int, channels c: Int) -> [Float] {
        var u = [Float](repeating: 0, count: 16 * m * c)
        for o in 0..<m {
            for i in 0..<c {
                let g = weight + (o * c + i) * 9
                // t = G g (4×3), then U = t Gᵀ (4×4).
                var t = [Float](repeating: 0, count: 12)
                for col in 0..<3 {
                    let g0 = g[col], g1 = g[3 + col], g2 = g[6 + col]
                    t[col] = g0
                    t[3 + col] = (g0 + g1 + g2) * 0.5
                    t[6 + col] = (g0 - g1 + g2) * 0.5
                    t[9 + col] = g2
                }
                for row in 0..<4 {
                    let t0 = t[row * 3], t1 = t[row * 3 + 1], t2 = t[row * 3 + 2]
                    let values = [t0, (t0 + t1 + t2) * 0.5, (t0 - t1 + t2) * 0.5, t2]
                    for col in 0..<4 { u[((row * 4 + col) * m + o) * c + i] = values[col] }
                }
            }
        }
        return u
    }

    /// The tile for an output plane of oh × ow on the packed path: F(4×4, 3×3) once the plane is
    /// at least 20 × 20 (five tiles each way), else F(2×2, 3×3). Measured per layer, one thread,
    /// Zen 4: PP-OCRv4's detector 96 → 24 at 184² 13.0–16.5 → 11.1–13.6 ms, at 46² 1.5–1.9 →
    /// 1.4–1.6 ms, at 23² 0.45–0.57 → 0.39–0.50 ms; open_nsfw at 56² and 28² also gain, but at
    /// 7² (2 × 2 tiles: GEMMs four columns wide) it took 6.0–8.3 ms against 2.2–6.4.
    public static func preferredTile(outHeight oh: Int, outWidth ow: Int) -> Tile {
        min(oh, ow) >= 20 ? .four : .two
    }

    /// U = G g Gᵀ for F(4×4, 3×3), laid out [36][M][C]; computed in Double (G holds sixths).
    public static func transformWeights43(_ weight: UnsafePointer<Float>, outChannels m: Int, channels c: Int) -> [Float] {
        let gRows: [(Double, Double, Double)] = [
            (1.0 / 4, 0, 0), (-1.0 / 6, -1.0 / 6, -1.0 / 6), (-1.0 / 6, 1.0 / 6, -1.0 / 6),
            (1.0 / 24, 1.0 / 12, 1.0 / 6), (1.0 / 24, -1.0 / 12, 1.0 / 6), (0, 0, 1),
        ]
        var u = [Float](repeating: 0, count: 36 * m * c)
        for o in 0..<m {
            for i in 0..<c {
                let g = weight + (o * c + i) * 9
                for (row, a) in gRows.enumerated() {
                    // (G g) row `row`, then · Gᵀ.
                    let t = (0..<3).map { col in a.0 * Double(g[col]) + a.1 * Double(g[3 + col]) + a.2 * Double(g[6 + col]) }
                    for (col, b) in gRows.enumerated() {
                        u[((row * 6 + col) * m + o) * c + i] = Float(b.0 * t[0] + b.1 * t[1] + b.2 * t[2])
                    }
                }
            }
        }
        return u
    }

    /// Transformed weights ([16][M][C], from `transformWeights`) packed for the packed-A tiles:
    /// [16] × `PackedConv.packedCount(outChannels: M, depth: C)`; nil without AVX2.
    /// With `tile` four, U is [36][M][C] (`transformWeights43`) and so is the packed copy.
    public static func packTransformed(_ u: [Float], outChannels m: Int, channels c: Int, tile: Tile = .two) -> [Float]? {
        let taps = tile.taps
        guard PackedConv.applies(groups: 1), u.count == taps * m * c else { return nil }
        let panelSize = PackedConv.packedCount(outChannels: m, depth: c)
        return [Float](unsafeUninitializedCapacity: taps * panelSize) { buffer, count in
            u.withUnsafeBufferPointer { src in
                for k in 0..<taps { sl_pack_rows6(src.baseAddress! + k * m * c, m, c, buffer.baseAddress! + k * panelSize) }
            }
            count = taps * panelSize
        }
    }

    /// The AVX2 path: blocks of whole tile rows; each row's input and output transforms run
    /// eight tiles per vector (`sl_winograd_input_row` / `sl_winograd_output_row`), the 16
    /// products on the packed GEMM kernel. Measured on open_nsfw's 3×3 layers, the scalar
    /// transforms were ~15% of the whole model.
    static func vectorConv(
        input: UnsafePointer<Float>, batch: Int, channels c: Int, height: Int, width: Int, packedWeights: UnsafePointer<Float>,
        outChannels m: Int, bias: UnsafePointer<Float>?, geometry g: Conv2DGeometry, fused: KernelActivation,
        output: UnsafeMutablePointer<Float>, threads: Int, tile: Tile
    ) {
        let (oh, ow) = g.outputSize(height: height, width: width)
        let size = tile.rawValue, taps = tile.taps
        let tilesH = (oh + size - 1) / size, tilesW = (ow + size - 1) / size
        let tileRows = batch * tilesH
        // Rows per block: the block's transformed tiles and products within 384 K floats each
        // (1.5 MB, so they are still in a 2 MB L2 when the GEMMs read them back), at least one
        // block per thread. Measured on an Intel Xeon (family 6 model 207), PP-OCRv4's three
        // 96 → 24 layers at 640×352, six alternating pairs: 8.0–11.1 ms against 8.8–13.7 ms
        // with 1 M floats (the input transform's stores had gone out to L3); open_nsfw's 3×3
        // layers unchanged within noise.
        let rowsByMemory = max(1, 393_216 / max(1, taps * max(c, m) * tilesW))
        let rowsPerBlock = max(1, min(rowsByMemory, (tileRows + max(threads, 1) - 1) / max(threads, 1)))
        let blocks = (tileRows + rowsPerBlock - 1) / rowsPerBlock
        let shared = SharedBuffers(input: input, weight: packedWeights, bias: bias, output: output)
        let panelSize = PackedConv.packedCount(outChannels: m, depth: c)
        let tiles = TileKernel.preferred  // read here: KernelPool's helpers do not see a task-local override
        let work = { @Sendable (block: Int) in
            let r0 = block * rowsPerBlock, r1 = min(tileRows, r0 + rowsPerBlock)
            guard r0 < r1 else { return }
            let n = (r1 - r0) * tilesW
            let v = UnsafeMutablePointer<Float>.allocate(capacity: taps * c * n)
            let products = UnsafeMutablePointer<Float>.allocate(capacity: taps * m * n)
            // The input transform's split rows (F(2×2): 4 rows × 2 column phases; F(4×4): 6 × 4)
            // or the GEMM's packing of B.
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max((tile == .two ? 8 : 24) * (tilesW + 16), c * 16))
            defer { v.deallocate(); products.deallocate(); scratch.deallocate() }
            let inputRow = tile == .two ? sl_winograd_input_row : sl_winograd43_input_row
            let outputRow = tile == .two ? sl_winograd_output_row : sl_winograd43_output_row
            for row in r0..<r1 {
                let image = row / tilesH, ty = row % tilesH
                inputRow(shared.input + image * c * height * width, c, height, width, g.padTop, g.padLeft, ty, tilesW,
                         v + (row - r0) * tilesW, n, scratch)
            }
            for k in 0..<taps {
                PackedConv.multiplyPackedA(m: m, k: c, packed: shared.weight + k * panelSize, panels: 0, (m + 5) / 6, b: v + k * c * n,
                                           ldb: n, n: n, c: products + k * m * n, ldc: n, bias: nil, activation: .none, scratch: scratch,
                                           kernel: tiles)
            }
            for row in r0..<r1 {
                let image = row / tilesH, ty = row % tilesH
                outputRow(products + (row - r0) * tilesW, m, n, tilesW, shared.output + image * m * oh * ow, oh, ow, ty,
                          shared.bias, fused.code, fused.lo, fused.hi)
            }
        }
        if threads > 1 && blocks > 1 { KernelPool.shared.run(blocks, work) } else { for block in 0..<blocks { work(block) } }
    }

    /// The convolution (NCHW, any padding), bias and activation, with weights already
    /// transformed by `transformWeights`, or those packed by `packTransformed` (either is
    /// enough; the packed ones are used when given).
    public static func conv(
        input: UnsafePointer<Float>, batch: Int, channels c: Int, height: Int, width: Int,
        transformedWeights u: UnsafePointer<Float>?, outChannels m: Int, bias: UnsafePointer<Float>?,
        geometry g: Conv2DGeometry, activation: Activation, output: UnsafeMutablePointer<Float>, threads: Int = 1,
        packedWeights: UnsafePointer<Float>? = nil, tile: Tile = .two
    ) {
        // The packed copy (`packTransformed`) is all the GEMMs read when it is given.
        guard let weights = packedWeights ?? u else { preconditionFailure("Winograd.conv needs the transformed or the packed weights") }
        if let packedWeights, tile == .four || activation.kernelActivation != nil {
            // F(4×4) has only the vector path: an activation the kernels do not fuse runs after it.
            let fused = activation.kernelActivation
            vectorConv(input: input, batch: batch, channels: c, height: height, width: width, packedWeights: packedWeights,
                       outChannels: m, bias: bias, geometry: g, fused: fused ?? .none, output: output, threads: threads, tile: tile)
            if fused == nil {
                let (oh, ow) = g.outputSize(height: height, width: width)
                activation.apply(output, count: batch * m * oh * ow)
            }
            return
        }
        precondition(tile == .two, "Winograd F(4×4, 3×3) runs on packed weights only")
        let packed = packedWeights.map { SharedPointer(pointer: $0) }
        let (oh, ow) = g.outputSize(height: height, width: width)
        let tilesH = (oh + 1) / 2, tilesW = (ow + 1) / 2
        let tilesPerImage = tilesH * tilesW
        let total = batch * tilesPerImage
        // A block's transformed input (16·C·B) and products (16·M·B) stay within ~1 MB.
        // A block's transformed tiles (16·C·B floats) and products (16·M·B): about 4 MB each
        // at most — large enough that the 16 GEMMs run with a long N (measured on open_nsfw:
        // 256 KB blocks 13.9 ms, 1 MB 11.4 ms, 4 MB 11.6 ms for its 3×3 convolutions).
        // With several threads, at least one block per thread.
        let blockSize = max(16, min((total + threads - 1) / max(threads, 1), 1_048_576 / max(1, 16 * max(c, m))))
        let blocks = (total + blockSize - 1) / blockSize
        let shared = SharedBuffers(input: input, weight: weights, bias: bias, output: output)
        let tiles = TileKernel.preferred  // read here: KernelPool's helpers do not see a task-local override
        let work = { @Sendable (block: Int) in
            let t0 = block * blockSize, t1 = min(total, t0 + blockSize)
            let n = t1 - t0
            guard n > 0 else { return }
            let v = UnsafeMutablePointer<Float>.allocate(capacity: 16 * c * n)
            let products = UnsafeMutablePointer<Float>.allocate(capacity: 16 * m * n)
            defer { v.deallocate(); products.deallocate() }
            // Input transform: V[k][channel][tile] = (Bᵀ d B)[k].
            let stride = c * n
            for ch in 0..<c {
                let vc = v + ch * n
                for j in 0..<n {
                    let tile = t0 + j
                    let image = tile / tilesPerImage, inImage = tile % tilesPerImage
                    let y0 = (inImage / tilesW) * 2 - g.padTop, x0 = (inImage % tilesW) * 2 - g.padLeft
                    let plane = shared.input + (image * c + ch) * height * width
                    // The 4×4 input tile, zero outside the image.
                    var d = (SIMD4<Float>(), SIMD4<Float>(), SIMD4<Float>(), SIMD4<Float>())
                    func row(_ r: Int) -> SIMD4<Float> {
                        let y = y0 + r
                        guard y >= 0 && y < height else { return SIMD4<Float>() }
                        let line = plane + y * width
                        if x0 >= 0 && x0 + 3 < width { return UnsafeRawPointer(line + x0).loadUnaligned(as: SIMD4<Float>.self) }
                        var out = SIMD4<Float>()
                        for col in 0..<4 where x0 + col >= 0 && x0 + col < width { out[col] = line[x0 + col] }
                        return out
                    }
                    d = (row(0), row(1), row(2), row(3))
                    // Bᵀ d (rows), then · B (columns).
                    let b0 = d.0 - d.2, b1 = d.1 + d.2, b2 = d.2 - d.1, b3 = d.1 - d.3
                    @inline(__always) func store(_ e: SIMD4<Float>, _ r: Int) {
                        let base = vc + (r * 4) * stride + j
                        base[0] = e[0] - e[2]
                        base[stride] = e[1] + e[2]
                        base[2 * stride] = e[2] - e[1]
                        base[3 * stride] = e[1] - e[3]
                    }
                    store(b0, 0)
                    store(b1, 1)
                    store(b2, 2)
                    store(b3, 3)
                }
            }
            // 16 GEMMs: products[k] (M×n) = U[k] (M×C) · V[k] (C×n); on the packed-A tiles with U
            // packed at plan time when available (OpenBLAS would pack both sides every call).
            if let packed {
                let panelSize = PackedConv.packedCount(outChannels: m, depth: c)
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: c * 16)
                defer { scratch.deallocate() }
                for k in 0..<16 {
                    PackedConv.multiplyPackedA(m: m, k: c, packed: packed.pointer + k * panelSize, panels: 0, (m + 5) / 6,
                                               b: v + k * c * n, ldb: n, n: n, c: products + k * m * n, ldc: n, bias: nil,
                                               activation: .none, scratch: scratch, kernel: tiles)
                }
            } else {
                for k in 0..<16 {
                    gemm(transposeA: false, transposeB: false, m: m, n: n, k: c,
                         a: shared.weight + k * m * c, lda: c, b: v + k * c * n, ldb: n, c: products + k * m * n, ldc: n)
                }
            }
            // Output transform: Y = Aᵀ M A, then bias and activation, clipped at the edges.
            let productStride = m * n
            for o in 0..<m {
                let b0 = shared.bias?[o] ?? 0
                let po = products + o * n
                for j in 0..<n {
                    @inline(__always) func rowOf(_ r: Int) -> SIMD4<Float> {
                        let base = po + (r * 4) * productStride + j
                        return SIMD4(base[0], base[productStride], base[2 * productStride], base[3 * productStride])
                    }
                    let p0 = rowOf(0), p1 = rowOf(1), p2 = rowOf(2), p3 = rowOf(3)
                    let r0 = p0 + p1 + p2, r1 = p1 - p2 - p3  // Aᵀ M
                    let y00 = r0[0] + r0[1] + r0[2] + b0, y01 = r0[1] - r0[2] - r0[3] + b0
                    let y10 = r1[0] + r1[1] + r1[2] + b0, y11 = r1[1] - r1[2] - r1[3] + b0
                    let tile = t0 + j
                    let image = tile / tilesPerImage, inImage = tile % tilesPerImage
                    let oy = (inImage / tilesW) * 2, ox = (inImage % tilesW) * 2
                    let plane = shared.output + (image * m + o) * oh * ow
                    plane[oy * ow + ox] = activation.apply(y00)
                    if ox + 1 < ow { plane[oy * ow + ox + 1] = activation.apply(y01) }
                    if oy + 1 < oh {
                        plane[(oy + 1) * ow + ox] = activation.apply(y10)
                        if ox + 1 < ow { plane[(oy + 1) * ow + ox + 1] = activation.apply(y11) }
                    }
                }
            }
        }
        if threads > 1 && blocks > 1 {
            KernelPool.shared.run(blocks, work)
        } else {
            for block in 0..<blocks { work(block) }
        }
    }
}
