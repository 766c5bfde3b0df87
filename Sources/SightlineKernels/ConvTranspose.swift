/// ConvTranspose2d, NCHW: input [N, C, H, W], weight [C, M/groups, kh, kw], output
/// [N, M, OH, OW] with OH = (H−1)·stride − padTop − padBottom + dilation·(kh−1) + 1 + outputPadding.
/// Computed as one GEMM per group (columns = Wᵀ·X) followed by col2im, a scatter-add.
public func convTranspose2d(
    input: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int,
    weight: UnsafePointer<Float>, outChannels: Int, bias: UnsafePointer<Float>?, groups: Int,
    geometry g: Conv2DGeometry, outHeight oh: Int, outWidth ow: Int, output: UnsafeMutablePointer<Float>
) {
    let cPerGroup = channels / groups, mPerGroup = outChannels / groups
    let rows = mPerGroup * g.kernelH * g.kernelW, spatial = height * width
    let columns = UnsafeMutablePointer<Float>.allocate(capacity: rows * spatial)
    defer { columns.deallocate() }
    output.update(repeating: 0, count: batch * outChannels * oh * ow)
    for n in 0..<batch {
        for group in 0..<groups {
            // columns[(m, ky, kx), p] = Σ_c W[c, m, ky, kx] · X[c, p]
            gemm(transposeA: true, transposeB: false, m: rows, n: spatial, k: cPerGroup,
                 a: weight + group * cPerGroup * rows, lda: rows,
                 b: input + (n * channels + group * cPerGroup) * spatial, ldb: spatial, c: columns, ldc: spatial)
            for m in 0..<mPerGroup {
                let plane = output + (n * outChannels + group * mPerGroup + m) * oh * ow
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
