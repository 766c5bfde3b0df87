/// Geometry of a 2-D convolution or pooling window (NCHW).
public struct Conv2DGeometry: Sendable, Equatable {
    public var kernelH: Int, kernelW: Int
    public var strideH: Int = 1, strideW: Int = 1
    public var padTop: Int = 0, padLeft: Int = 0, padBottom: Int = 0, padRight: Int = 0
    public var dilationH: Int = 1, dilationW: Int = 1

    public init(kernelH: Int, kernelW: Int, strideH: Int = 1, strideW: Int = 1, padTop: Int = 0, padLeft: Int = 0,
                padBottom: Int = 0, padRight: Int = 0, dilationH: Int = 1, dilationW: Int = 1) {
        self.kernelH = kernelH; self.kernelW = kernelW
        self.strideH = strideH; self.strideW = strideW
        self.padTop = padTop; self.padLeft = padLeft; self.padBottom = padBottom; self.padRight = padRight
        self.dilationH = dilationH; self.dilationW = dilationW
    }

    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        let effH = dilationH * (kernelH - 1) + 1
        let effW = dilationW * (kernelW - 1) + 1
        return ((height + padTop + padBottom - effH) / strideH + 1, (width + padLeft + padRight - effW) / strideW + 1)
    }

    /// TF / ONNX auto_pad SAME_UPPER: output = ceil(input / stride), extra padding at the end.
    public static func samePadding(input: Int, kernel: Int, stride: Int, dilation: Int) -> (begin: Int, end: Int) {
        let out = (input + stride - 1) / stride
        let total = max(0, (out - 1) * stride + dilation * (kernel - 1) + 1 - input)
        return (total / 2, total - total / 2)
    }
}

/// Conv2d, NCHW. input [N, C, H, W], weight [M, C/groups, kh, kw], bias [M] or nil,
/// output [N, M, OH, OW]; the activation is applied to the result. Depthwise convolutions
/// (groups == C == M) take the direct kernel; everything else im2col + GEMM per group.
public func conv2d(
    input: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int,
    weight: UnsafePointer<Float>, outChannels: Int, bias: UnsafePointer<Float>?, groups: Int,
    geometry g: Conv2DGeometry, activation: Activation, output: UnsafeMutablePointer<Float>,
    scratch: inout [Float]
) {
    let (oh, ow) = g.outputSize(height: height, width: width)
    if groups == channels && groups == outChannels && groups > 1 {
        depthwiseConv2d(input: input, batch: batch, channels: channels, height: height, width: width, weight: weight,
                        bias: bias, geometry: g, activation: activation, output: output)
        return
    }
    let cPerGroup = channels / groups
    let mPerGroup = outChannels / groups
    let kSize = cPerGroup * g.kernelH * g.kernelW
    let spatial = oh * ow
    let pointwise = g.kernelH == 1 && g.kernelW == 1 && g.strideH == 1 && g.strideW == 1
        && g.padTop == 0 && g.padLeft == 0 && g.padBottom == 0 && g.padRight == 0
    if !pointwise && scratch.count < kSize * spatial { scratch = [Float](repeating: 0, count: kSize * spatial) }
    scratch.withUnsafeMutableBufferPointer { columns in
        for n in 0..<batch {
            for group in 0..<groups {
                let inBase = input + (n * channels + group * cPerGroup) * height * width
                let outBase = output + (n * outChannels + group * mPerGroup) * spatial
                let b: UnsafePointer<Float>
                if pointwise {
                    b = inBase  // a 1×1 stride-1 convolution is a plain GEMM on the input
                } else {
                    im2col(inBase, channels: cPerGroup, height: height, width: width, geometry: g, outH: oh, outW: ow, columns: columns.baseAddress!)
                    b = UnsafePointer(columns.baseAddress!)
                }
                gemm(transposeA: false, transposeB: false, m: mPerGroup, n: spatial, k: kSize,
                     a: weight + group * mPerGroup * kSize, lda: kSize, b: b, ldb: spatial, c: outBase, ldc: spatial)
            }
            finishChannels(output + n * outChannels * spatial, channels: outChannels, spatial: spatial, bias: bias, activation: activation)
        }
    }
}

/// Adds the bias and applies the activation per output channel.
@inline(__always)
func finishChannels(_ out: UnsafeMutablePointer<Float>, channels: Int, spatial: Int, bias: UnsafePointer<Float>?, activation: Activation) {
    for c in 0..<channels {
        let row = out + c * spatial
        if let bias {
            let b = bias[c]
            for i in 0..<spatial { row[i] += b }
        }
        activation.apply(row, count: spatial)
    }
}

/// Unfolds input patches into columns [C·kh·kw, OH·OW] so the convolution is one GEMM.
func im2col(_ input: UnsafePointer<Float>, channels: Int, height: Int, width: Int, geometry g: Conv2DGeometry,
            outH: Int, outW: Int, columns: UnsafeMutablePointer<Float>) {
    var row = 0
    for c in 0..<channels {
        let plane = input + c * height * width
        for ky in 0..<g.kernelH {
            for kx in 0..<g.kernelW {
                let dst = columns + row * outH * outW
                row += 1
                for oy in 0..<outH {
                    let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                    let line = dst + oy * outW
                    if iy < 0 || iy >= height {
                        line.update(repeating: 0, count: outW)
                        continue
                    }
                    let src = plane + iy * width
                    let x0 = kx * g.dilationW - g.padLeft
                    if g.strideW == 1 {
                        // Contiguous run: zero the borders, copy the middle.
                        for ox in 0..<outW {
                            let ix = ox + x0
                            line[ox] = (ix >= 0 && ix < width) ? src[ix] : 0
                        }
                    } else {
                        for ox in 0..<outW {
                            let ix = ox * g.strideW + x0
                            line[ox] = (ix >= 0 && ix < width) ? src[ix] : 0
                        }
                    }
                }
            }
        }
    }
}

/// Depthwise conv (one filter per channel), direct: each output row accumulates kernel taps
/// over contiguous input rows, which the compiler vectorises for stride 1.
public func depthwiseConv2d(
    input: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, geometry g: Conv2DGeometry,
    activation: Activation, output: UnsafeMutablePointer<Float>
) {
    let (oh, ow) = g.outputSize(height: height, width: width)
    // Output columns whose whole window lies inside the input (no bounds checks needed).
    let interiorStart = min(ow, max(0, (g.padLeft + g.strideW - 1) / g.strideW))
    let interiorEnd = max(interiorStart, min(ow, (width + g.padLeft - (g.kernelW - 1) * g.dilationW - 1) / g.strideW + 1))
    for n in 0..<batch {
        for c in 0..<channels {
            let plane = input + (n * channels + c) * height * width
            let out = output + (n * channels + c) * oh * ow
            let w = weight + c * g.kernelH * g.kernelW
            let b = bias?[c] ?? 0
            for oy in 0..<oh {
                let line = out + oy * ow
                line.update(repeating: b, count: ow)
                for ky in 0..<g.kernelH {
                    let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                    if iy < 0 || iy >= height { continue }
                    let src = plane + iy * width
                    for kx in 0..<g.kernelW {
                        let tap = w[ky * g.kernelW + kx]
                        let x0 = kx * g.dilationW - g.padLeft
                        for ox in 0..<interiorStart {
                            let ix = ox * g.strideW + x0
                            if ix >= 0 && ix < width { line[ox] += tap * src[ix] }
                        }
                        if g.strideW == 1 {
                            let s = src + x0
                            for ox in interiorStart..<interiorEnd { line[ox] += tap * s[ox] }
                        } else {
                            for ox in interiorStart..<interiorEnd { line[ox] += tap * src[ox * g.strideW + x0] }
                        }
                        for ox in interiorEnd..<ow {
                            let ix = ox * g.strideW + x0
                            if ix >= 0 && ix < width { line[ox] += tap * src[ix] }
                        }
                    }
                }
                activation.apply(line, count: ow)
            }
        }
    }
}

/// The reference twin of `conv2d`: seven nested loops, no tricks, Double accumulation.
public func referenceConv2d(
    input: [Float], batch: Int, channels: Int, height: Int, width: Int,
    weight: [Float], outChannels: Int, bias: [Float]?, groups: Int, geometry g: Conv2DGeometry, activation: Activation
) -> [Float] {
    let (oh, ow) = g.outputSize(height: height, width: width)
    let cPerGroup = channels / groups, mPerGroup = outChannels / groups
    var out = [Float](repeating: 0, count: batch * outChannels * oh * ow)
    for n in 0..<batch {
        for m in 0..<outChannels {
            let group = m / mPerGroup
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var sum = Double(bias?[m] ?? 0)
                    for c in 0..<cPerGroup {
                        let ic = group * cPerGroup + c
                        for ky in 0..<g.kernelH {
                            for kx in 0..<g.kernelW {
                                let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                                let ix = ox * g.strideW - g.padLeft + kx * g.dilationW
                                guard iy >= 0, iy < height, ix >= 0, ix < width else { continue }
                                sum += Double(input[((n * channels + ic) * height + iy) * width + ix])
                                    * Double(weight[((m * cPerGroup + c) * g.kernelH + ky) * g.kernelW + kx])
                            }
                        }
                    }
                    out[((n * outChannels + m) * oh + oy) * ow + ox] = activation.apply(Float(sum))
                }
            }
        }
    }
    return out
}
