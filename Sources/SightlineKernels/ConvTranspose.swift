import CSightlineKernels

/// The GEMM of a transposed convolution, columns[(m, ky, kx), p] = Σ_c W[c, m, ky, kx] · X[c, p]
/// for one group: on the packed-A tiles (`PackedConv.multiplyPackedA`) where the CPU has AVX2,
/// with Wᵀ packed once per call (a few thousand floats for a text detector's head), else on
/// OpenBLAS. OpenBLAS took PP-OCRv4's 2×2 upsampling at 10.7 of the detector's 85 ms on a
/// CPU it did not recognise (running its SSE3 kernels there).
private struct TransposedColumns {
    let weight: UnsafePointer<Float>
    let rows: Int, depth: Int
    let packed: [Float]?
    let tiles: TileKernel

    init(weight: UnsafePointer<Float>, rows: Int, depth: Int, groups: Int) {
        (self.weight, self.rows, self.depth) = (weight, rows, depth)
        tiles = .preferred
        guard KernelConfig.current.hasAVX2 else { packed = nil; return }
        // Group g's W is [depth × rows]: its columns 6p ..< 6p + 6 are rows 6p ..< 6p + 6 of Wᵀ,
        // the 6-row panels the tiles take, packed as the expand step packs positions.
        let panels = (rows + 5) / 6, panelSize = panels * 6 * depth
        packed = [Float](unsafeUninitializedCapacity: groups * panelSize) { buffer, count in
            for g in 0..<groups {
                sl_pack_positions6(weight + g * depth * rows, rows, depth, 0, panels, buffer.baseAddress! + g * panelSize)
            }
            count = groups * panelSize
        }
    }

    /// Columns for `n` positions of group `group`: B = X rows at `input`, row stride ldb.
    func compute(group: Int, input: UnsafePointer<Float>, ldb: Int, n: Int, columns: UnsafeMutablePointer<Float>) {
        guard let packed else {
            gemm(transposeA: true, transposeB: false, m: rows, n: n, k: depth, a: weight + group * depth * rows, lda: rows,
                 b: input, ldb: ldb, c: columns, ldc: n)
            return
        }
        let panelSize = (rows + 5) / 6 * 6 * depth
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: depth * 16)
        defer { scratch.deallocate() }
        packed.withUnsafeBufferPointer {
            PackedConv.multiplyPackedA(m: rows, k: depth, packed: $0.baseAddress! + group * panelSize, panels: 0, (rows + 5) / 6, b: input,
                                       ldb: ldb, n: n, c: columns, ldc: n, bias: nil, activation: .none, scratch: scratch, kernel: tiles)
        }
    }
}

/// ConvTranspose2d, NCHW: input [N, C, H, W], weight [C, M/groups, kh, kw], output
/// [N, M, OH, OW] with OH = (H−1)·stride − padTop − padBottom + dilation·(kh−1) + 1 + outputPadding.
/// Computed as one GEMM per group (columns = Wᵀ·X) followed by col2im, a scatter-add. Every
/// element of `output` is written, then `activation` applied (row by row as the taps are
/// placed, while the row is in cache, when they tile the output).
public func convTranspose2d(
    input: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int,
    weight: UnsafePointer<Float>, outChannels: Int, bias: UnsafePointer<Float>?, groups: Int,
    geometry g: Conv2DGeometry, outHeight oh: Int, outWidth ow: Int, output: UnsafeMutablePointer<Float>,
    activation: Activation = .none
) {
    let cPerGroup = channels / groups, mPerGroup = outChannels / groups
    let rows = mPerGroup * g.kernelH * g.kernelW, spatial = height * width
    // Each output pixel takes exactly one tap (the 2×2 stride-2 upsampling of DB text detection
    // heads): each tap's column is copied into its place with the bias, with no zeroing and no
    // scatter-add. PP-OCRv4's detector head took 9.7 ms the general way, 5.0 ms this way.
    if tapsTile(g, height: height, width: width, outHeight: oh, outWidth: ow) {
        convTransposeTiled(input: input, batch: batch, channels: channels, height: height, width: width, weight: weight,
                           outChannels: outChannels, bias: bias, groups: groups, kernelH: g.kernelH, kernelW: g.kernelW,
                           output: output, activation: activation)
        return
    }
    let columns = UnsafeMutablePointer<Float>.allocate(capacity: rows * spatial)
    defer { columns.deallocate() }
    output.update(repeating: 0, count: batch * outChannels * oh * ow)
    let gemmColumns = TransposedColumns(weight: weight, rows: rows, depth: cPerGroup, groups: groups)
    for n in 0..<batch {
        for group in 0..<groups {
            gemmColumns.compute(group: group, input: input + (n * channels + group * cPerGroup) * spatial, ldb: spatial,
                                n: spatial, columns: columns)
            for m in 0..<mPerGroup {
                let channel = group * mPerGroup + m
                let plane = output + (n * outChannels + channel) * oh * ow
                for ky in 0..<g.kernelH {
                    for kx in 0..<g.kernelW {
                        let col = columns + ((m * g.kernelH + ky) * g.kernelW + kx) * spatial
                        for iy in 0..<height {
                            let oy = iy * g.strideH - g.padTop + ky * g.dilationH
                            if oy < 0 || oy >= oh { continue }
                            for ix in 0..<width {
                                let ox = ix * g.strideW - g.padLeft + kx * g.dilationW
                                if ox >= 0 && ox < ow { plane[oy * ow + ox] += col[iy * width + ix] }
                            }
                        }
                    }
                }
            }
        }
        if let bias {
            for m in 0..<outChannels {
                let plane = output + (n * outChannels + m) * oh * ow
                for i in 0..<(oh * ow) { plane[i] += bias[m] }
            }
        }
    }
    activation.apply(output, count: batch * outChannels * oh * ow)
}

/// The tiling case, a band of input rows at a time: the band's GEMM columns (all taps of all
/// output channels) stay in the L2 cache until they are placed, instead of one columns buffer
/// for the whole map (PP-OCRv4's head: 13 MB written and read back at 960×544).
private func convTransposeTiled(
    input: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int, weight: UnsafePointer<Float>,
    outChannels: Int, bias: UnsafePointer<Float>?, groups: Int, kernelH: Int, kernelW: Int,
    output: UnsafeMutablePointer<Float>, activation: Activation
) {
    let cPerGroup = channels / groups, mPerGroup = outChannels / groups
    let rows = mPerGroup * kernelH * kernelW, spatial = height * width
    let oh = height * kernelH, ow = width * kernelW
    let band = max(1, min(height, 131_072 / max(1, rows * width)))  // ~512 KB of columns
    let columns = UnsafeMutablePointer<Float>.allocate(capacity: rows * band * width)
    defer { columns.deallocate() }
    let gemmColumns = TransposedColumns(weight: weight, rows: rows, depth: cPerGroup, groups: groups)
    for n in 0..<batch {
        for group in 0..<groups {
            var r0 = 0
            while r0 < height {
                let r1 = min(height, r0 + band), bandSpatial = (r1 - r0) * width
                // columns[(m, ky, kx), p] = Σ_c W[c, m, ky, kx] · X[c, r0·width + p]
                gemmColumns.compute(group: group, input: input + (n * channels + group * cPerGroup) * spatial + r0 * width,
                                    ldb: spatial, n: bandSpatial, columns: columns)
                for m in 0..<mPerGroup {
                    let channel = group * mPerGroup + m
                    let plane = output + (n * outChannels + channel) * oh * ow + r0 * kernelH * ow
                    placeTaps(columns + m * kernelH * kernelW * bandSpatial, kernelH: kernelH, kernelW: kernelW,
                              height: r1 - r0, width: width, bias: bias?[channel] ?? 0, activation: activation, plane: plane)
                }
                r0 = r1
            }
        }
    }
}

/// Whether the taps tile the output: stride equal to the kernel, no dilation, no padding and no
/// output padding, so each output pixel comes from exactly one input pixel and one tap.
func tapsTile(_ g: Conv2DGeometry, height: Int, width: Int, outHeight: Int, outWidth: Int) -> Bool {
    g.strideH == g.kernelH && g.strideW == g.kernelW && g.dilationH == 1 && g.dilationW == 1
        && g.padTop == 0 && g.padLeft == 0 && g.padBottom == 0 && g.padRight == 0
        && outHeight == height * g.kernelH && outWidth == width * g.kernelW
}

/// One output plane of a tiling transposed convolution: tap (ky, kx)'s column (`height`×`width`,
/// at `taps + (ky·kernelW + kx)·height·width`) lands on rows ky, ky+kh, … and columns kx, kx+kw, …
@inline(__always)
private func placeTaps(_ taps: UnsafePointer<Float>, kernelH: Int, kernelW: Int, height: Int, width: Int, bias: Float,
                       activation: Activation, plane: UnsafeMutablePointer<Float>) {
    let spatial = height * width, ow = width * kernelW
    for ky in 0..<kernelH {
        for iy in 0..<height {
            let row = plane + (iy * kernelH + ky) * ow
            if kernelW == 2 {
                // The common case, interleaving two columns eight pixels at a time.
                let a = taps + (ky * 2) * spatial + iy * width, b = a + spatial
                var ix = 0
                while ix + 8 <= width {
                    let x = UnsafeRawPointer(a + ix).loadUnaligned(as: SIMD8<Float>.self) + bias
                    let y = UnsafeRawPointer(b + ix).loadUnaligned(as: SIMD8<Float>.self) + bias
                    let pairs = SIMD16<Float>(x[0], y[0], x[1], y[1], x[2], y[2], x[3], y[3], x[4], y[4], x[5], y[5], x[6], y[6], x[7], y[7])
                    UnsafeMutableRawPointer(row + 2 * ix).storeBytes(of: pairs, as: SIMD16<Float>.self)
                    ix += 8
                }
                while ix < width {
                    row[2 * ix] = a[ix] + bias
                    row[2 * ix + 1] = b[ix] + bias
                    ix += 1
                }
            } else {
                for kx in 0..<kernelW {
                    let column = taps + (ky * kernelW + kx) * spatial + iy * width
                    for ix in 0..<width { row[ix * kernelW + kx] = column[ix] + bias }
                }
            }
            activation.apply(row, count: ow)
        }
    }
}

/// The reference twin of `convTranspose2d`: every input pixel scattered through every tap.
public func referenceConvTranspose2d(
    input: [Float], batch: Int, channels: Int, height: Int, width: Int, weight: [Float], outChannels: Int,
    bias: [Float]?, groups: Int, geometry g: Conv2DGeometry, outHeight oh: Int, outWidth ow: Int
) -> [Float] {
    var out = [Double](repeating: 0, count: batch * outChannels * oh * ow)
    let cPerGroup = channels / groups, mPerGroup = outChannels / groups
    for n in 0..<batch {
        for c in 0..<channels {
            let group = c / cPerGroup
            for iy in 0..<height {
                for ix in 0..<width {
                    let x = Double(input[((n * channels + c) * height + iy) * width + ix])
                    for m in 0..<mPerGroup {
                        for ky in 0..<g.kernelH {
                            for kx in 0..<g.kernelW {
                                let oy = iy * g.strideH - g.padTop + ky * g.dilationH
                                let ox = ix * g.strideW - g.padLeft + kx * g.dilationW
                                guard oy >= 0, oy < oh, ox >= 0, ox < ow else { continue }
                                let w = Double(weight[((c * mPerGroup + m) * g.kernelH + ky) * g.kernelW + kx])
                                out[((n * outChannels + group * mPerGroup + m) * oh + oy) * ow + ox] += x * w
                            }
                        }
                    }
                }
            }
        }
        if let bias {
            for m in 0..<outChannels { for i in 0..<(oh * ow) { out[(n * outChannels + m) * oh * ow + i] += Double(bias[m]) } }
        }
    }
    return out.map(Float.init)
}
