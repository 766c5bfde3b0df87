import Dispatch

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
///
/// Threads: the output's spatial positions are split into `threads` column blocks run with
/// `KernelPool`, each doing its own im2col and a single-threaded GEMM.
/// Sightline owns the cores this way and keeps OpenBLAS at one thread (its own threading
/// helps little on the small GEMMs of a CNN and would oversubscribe the Dispatch workers).
public func conv2d(
    input: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int,
    weight: UnsafePointer<Float>, outChannels: Int, bias: UnsafePointer<Float>?, groups: Int,
    geometry g: Conv2DGeometry, activation: Activation, output: UnsafeMutablePointer<Float>,
    threads: Int = 1, depthwiseInterleaved: UnsafePointer<Float>? = nil, depthwiseKernel: DepthwiseKernel = .best
) {
    let (oh, ow) = g.outputSize(height: height, width: width)
    if groups == channels && groups == outChannels && groups > 1 {
        depthwiseConv2d(input: input, batch: batch, channels: channels, height: height, width: width, weight: weight,
                        bias: bias, geometry: g, activation: activation, output: output, threads: threads,
                        interleaved: depthwiseInterleaved, kernel: depthwiseKernel)
        return
    }
    let cPerGroup = channels / groups
    let mPerGroup = outChannels / groups
    let kSize = cPerGroup * g.kernelH * g.kernelW
    let spatial = oh * ow
    let pointwise = g.kernelH == 1 && g.kernelW == 1 && g.strideH == 1 && g.strideW == 1
        && g.padTop == 0 && g.padLeft == 0 && g.padBottom == 0 && g.padRight == 0
    if threads > 1 && spatial < 64 * threads && mPerGroup >= 16 * threads {
        // Late layers: few positions, many filters. Unfold once, split the filters.
        splitFiltersConv(input: input, batch: batch, channels: channels, height: height, width: width, weight: weight,
                         outChannels: outChannels, bias: bias, groups: groups, geometry: g, activation: activation,
                         output: output, threads: threads, pointwise: pointwise)
        return
    }
    // Column blocks: at least 64 positions (small late layers do not pay for splitting) and
    // small enough that a block's unfolded columns stay in L2 (~512 KB), since im2col of an
    // early layer would otherwise stream megabytes through memory twice.
    let threadBlock = (spatial + max(1, min(threads, spatial / 64)) - 1) / max(1, min(threads, spatial / 64))
    let blockSize = pointwise ? threadBlock : max(64, min(threadBlock, 131_072 / max(kSize, 1)))
    let blocks = (spatial + blockSize - 1) / blockSize
    let shared = SharedBuffers(input: input, weight: weight, bias: bias, output: output)
    let work = { @Sendable (block: Int) in
        let input = shared.input, weight = shared.weight, output = shared.output
        let p0 = block * blockSize, p1 = min(spatial, p0 + blockSize)
        guard p0 < p1 else { return }
        let columns = pointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: kSize * (p1 - p0))
        defer { columns?.deallocate() }
        for n in 0..<batch {
            for group in 0..<groups {
                let inBase = input + (n * channels + group * cPerGroup) * height * width
                let outBase = output + (n * outChannels + group * mPerGroup) * spatial
                if let columns {
                    im2col(inBase, channels: cPerGroup, height: height, width: width, geometry: g, outH: oh, outW: ow,
                           from: p0, to: p1, columns: columns)
                    gemm(transposeA: false, transposeB: false, m: mPerGroup, n: p1 - p0, k: kSize,
                         a: weight + group * mPerGroup * kSize, lda: kSize, b: columns, ldb: p1 - p0, c: outBase + p0, ldc: spatial)
                } else {
                    // A 1×1 stride-1 convolution is a plain GEMM on the input.
                    gemm(transposeA: false, transposeB: false, m: mPerGroup, n: p1 - p0, k: kSize,
                         a: weight + group * mPerGroup * kSize, lda: kSize, b: inBase + p0, ldb: spatial, c: outBase + p0, ldc: spatial)
                }
            }
            finishChannels(output + n * outChannels * spatial, channels: outChannels, spatial: spatial, from: p0, to: p1,
                           bias: shared.bias, activation: activation)
        }
    }
    if blocks == 1 || threads == 1 {
        for block in 0..<blocks { work(block) }
    } else {
        KernelPool.shared.run(blocks, work)
    }
}

/// conv2d for small spatial sizes: one im2col, then the output channels split across threads.
func splitFiltersConv(
    input: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int,
    weight: UnsafePointer<Float>, outChannels: Int, bias: UnsafePointer<Float>?, groups: Int,
    geometry g: Conv2DGeometry, activation: Activation, output: UnsafeMutablePointer<Float>, threads: Int, pointwise: Bool
) {
    let (oh, ow) = g.outputSize(height: height, width: width)
    let cPerGroup = channels / groups, mPerGroup = outChannels / groups
    let kSize = cPerGroup * g.kernelH * g.kernelW, spatial = oh * ow
    let columns = pointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: kSize * spatial)
    defer { columns?.deallocate() }
    for n in 0..<batch {
        for group in 0..<groups {
            let inBase = input + (n * channels + group * cPerGroup) * height * width
            if let columns {
                im2col(inBase, channels: cPerGroup, height: height, width: width, geometry: g, outH: oh, outW: ow, from: 0, to: spatial, columns: columns)
            }
            let shared = SharedBuffers(input: UnsafePointer(columns ?? UnsafeMutablePointer(mutating: inBase)), weight: weight + group * mPerGroup * kSize,
                                       bias: bias.map { $0 + group * mPerGroup }, output: output + (n * outChannels + group * mPerGroup) * spatial)
            let per = (mPerGroup + threads - 1) / threads
            KernelPool.shared.run(threads) { t in
                let m0 = t * per, m1 = min(mPerGroup, m0 + per)
                guard m0 < m1 else { return }
                gemm(transposeA: false, transposeB: false, m: m1 - m0, n: spatial, k: kSize, a: shared.weight + m0 * kSize, lda: kSize,
                     b: shared.input, ldb: spatial, c: shared.output + m0 * spatial, ldc: spatial)
                finishChannels(shared.output + m0 * spatial, channels: m1 - m0, spatial: spatial, from: 0, to: spatial,
                               bias: shared.bias.map { $0 + m0 }, activation: activation)
            }
        }
    }
}

/// Adds the bias and applies the activation per output channel, on columns p0..<p1.
@inline(__always)
func finishChannels(_ out: UnsafeMutablePointer<Float>, channels: Int, spatial: Int, from p0: Int, to p1: Int,
                    bias: UnsafePointer<Float>?, activation: Activation) {
    for c in 0..<channels {
        let row = out + c * spatial + p0
        if let bias {
            let b = bias[c]
            for i in 0..<(p1 - p0) { row[i] += b }
        }
        activation.apply(row, count: p1 - p0)
    }
}

/// Unfolds input patches into columns [C·kh·kw, p1−p0] for output positions p0..<p1
/// (flattened oy·OW+ox), so the convolution is one GEMM per column block.
func im2col(_ input: UnsafePointer<Float>, channels: Int, height: Int, width: Int, geometry g: Conv2DGeometry,
            outH: Int, outW: Int, from p0: Int, to p1: Int, columns: UnsafeMutablePointer<Float>) {
    let count = p1 - p0
    var row = 0
    for c in 0..<channels {
        let plane = input + c * height * width
        for ky in 0..<g.kernelH {
            for kx in 0..<g.kernelW {
                let dst = columns + row * count
                row += 1
                let x0 = kx * g.dilationW - g.padLeft
                var p = p0
                while p < p1 {
                    let oy = p / outW, oxStart = p % outW
                    let oxEnd = min(outW, oxStart + (p1 - p))
                    let line = dst + (p - p0) - oxStart
                    let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                    if iy < 0 || iy >= height {
                        (line + oxStart).update(repeating: 0, count: oxEnd - oxStart)
                    } else {
                        // Zeros where the tap falls in the padding, a plain (strided) copy between.
                        let src = plane + iy * width
                        let inStart = min(oxEnd, max(oxStart, x0 >= 0 ? 0 : (-x0 + g.strideW - 1) / g.strideW))
                        let inEnd = max(inStart, min(oxEnd, width - x0 <= 0 ? 0 : (width - x0 - 1) / g.strideW + 1))
                        if inStart > oxStart { (line + oxStart).update(repeating: 0, count: inStart - oxStart) }
                        if g.strideW == 1 {
                            (line + inStart).update(from: src + inStart + x0, count: inEnd - inStart)
                        } else {
                            let s = g.strideW
                            for ox in inStart..<inEnd { line[ox] = src[ox * s + x0] }
                        }
                        if oxEnd > inEnd { (line + inEnd).update(repeating: 0, count: oxEnd - inEnd) }
                    }
                    p += oxEnd - oxStart
                }
            }
        }
    }
}

/// Which depthwise kernel may run: the best that applies (the eight-lane kernel where its
/// interleaved copy stays in L2), or the plane kernel (the planner's choice when its
/// `interleave-depthwise` pass is off).
public enum DepthwiseKernel: Sendable {
    case best, planes
}

/// Depthwise conv (one filter per channel): where the AVX2 kernels apply (dilation 1, stride 1
/// or 2 across, a CPU with AVX2/FMA) the eight-lane interleaved kernel for planes whose copy
/// stays in L2, else the plane kernel (see `VectorDepthwise`); otherwise `portableDepthwiseConv2d`.
public func depthwiseConv2d(
    input: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, geometry g: Conv2DGeometry,
    activation: Activation, output: UnsafeMutablePointer<Float>, threads: Int = 1, interleaved: UnsafePointer<Float>? = nil,
    kernel: DepthwiseKernel = .best
) {
    if kernel == .best, VectorDepthwise.applies(g), let scratch = VectorDepthwise.interleavedScratch(height: height, width: width, geometry: g) {
        VectorDepthwise.interleavedConv(input: input, batch: batch, channels: channels, height: height, width: width, weight: weight,
                                        bias: bias, geometry: g, activation: activation, output: output, threads: threads, scratch: scratch,
                                        interleaved: interleaved)
    } else if VectorDepthwise.applies(g) {
        VectorDepthwise.planeConv(input: input, batch: batch, channels: channels, height: height, width: width, weight: weight,
                                  bias: bias, geometry: g, activation: activation, output: output, threads: threads)
    } else {
        portableDepthwiseConv2d(input: input, batch: batch, channels: channels, height: height, width: width, weight: weight,
                                bias: bias, geometry: g, activation: activation, output: output, threads: threads)
    }
}

/// Depthwise conv in plain Swift, any geometry: each output row accumulates kernel taps over
/// contiguous input rows, which the compiler vectorises for stride 1; small planes with many
/// channels go channels-last instead.
public func portableDepthwiseConv2d(
    input: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, geometry g: Conv2DGeometry,
    activation: Activation, output: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    let (outH, outW) = g.outputSize(height: height, width: width)
    if outH * outW <= 1024 && channels >= 32 {
        // Small planes, many channels (late MobileNet/EfficientNet layers): row loops would be
        // a few elements long, so vectorise across channels instead.
        depthwiseChannelsLast(input: input, batch: batch, channels: channels, height: height, width: width, weight: weight,
                              bias: bias, geometry: g, activation: activation, output: output, threads: threads)
        return
    }
    if threads > 1 && batch * channels >= 2 * threads {
        // Planes are independent: split them across threads.
        let planes = batch * channels
        let per = (planes + threads - 1) / threads
        let shared = SharedBuffers(input: input, weight: weight, bias: bias, output: output)
        let (oh, ow) = g.outputSize(height: height, width: width)
        KernelPool.shared.run(threads) { t in
            let start = t * per, end = min(planes, start + per)
            for plane in start..<max(start, end) {
                let c = plane % channels
                portableDepthwiseConv2d(
                    input: shared.input + plane * height * width, batch: 1, channels: 1,
                    height: height, width: width, weight: shared.weight + c * g.kernelH * g.kernelW,
                    bias: shared.bias.map { $0 + c }, geometry: g, activation: activation,
                    output: shared.output + plane * oh * ow, threads: 1)
            }
        }
        return
    }
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

/// Depthwise conv computed channels-last: the input is transposed (and zero-padded) to
/// [H+pads][W+pads][C], every tap then updates all channels of an output position in one
/// contiguous, vectorised loop, and the result is transposed back to NCHW.
func depthwiseChannelsLast(
    input: UnsafePointer<Float>, batch: Int, channels c: Int, height: Int, width: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, geometry g: Conv2DGeometry,
    activation: Activation, output: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    let (oh, ow) = g.outputSize(height: height, width: width)
    let ph = height + g.padTop + g.padBottom, pw = width + g.padLeft + g.padRight
    let taps = g.kernelH * g.kernelW
    let padded = UnsafeMutablePointer<Float>.allocate(capacity: ph * pw * c)
    let result = UnsafeMutablePointer<Float>.allocate(capacity: oh * ow * c)
    let tapWeights = UnsafeMutablePointer<Float>.allocate(capacity: taps * c)  // [tap][channel]
    defer { padded.deallocate(); result.deallocate(); tapWeights.deallocate() }
    for ch in 0..<c { for t in 0..<taps { tapWeights[t * c + ch] = weight[ch * taps + t] } }
    for n in 0..<batch {
        padded.update(repeating: 0, count: ph * pw * c)
        let src = input + n * c * height * width
        for ch in 0..<c {
            let plane = src + ch * height * width
            for y in 0..<height {
                let row = padded + ((y + g.padTop) * pw + g.padLeft) * c + ch
                for x in 0..<width { row[x * c] = plane[y * width + x] }
            }
        }
        // Output rows are independent: split them across threads when asked.
        let shared = SharedBuffers(input: UnsafePointer(padded), weight: UnsafePointer(tapWeights), bias: bias, output: result)
        let rowsPerBlock = threads > 1 ? (oh + threads - 1) / threads : oh
        let rows = { @Sendable (block: Int) in
            for oy in (block * rowsPerBlock)..<min(oh, (block + 1) * rowsPerBlock) {
                for ox in 0..<ow {
                    let out = shared.output + (oy * ow + ox) * c
                    if let bias = shared.bias { out.update(from: bias, count: c) } else { out.update(repeating: 0, count: c) }
                    for ky in 0..<g.kernelH {
                        let iy = oy * g.strideH + ky * g.dilationH
                        for kx in 0..<g.kernelW {
                            let ix = ox * g.strideW + kx * g.dilationW
                            let pixel = shared.input + (iy * pw + ix) * c
                            let w = shared.weight + (ky * g.kernelW + kx) * c
                            for ch in 0..<c { out[ch] += w[ch] * pixel[ch] }
                        }
                    }
                    activation.apply(out, count: c)
                }
            }
        }
        let blockCount = (oh + rowsPerBlock - 1) / rowsPerBlock
        if blockCount > 1 { KernelPool.shared.run(blockCount, rows) } else { rows(0) }
        let dst = output + n * c * oh * ow
        for p in 0..<(oh * ow) {
            let from = result + p * c
            for ch in 0..<c { dst[ch * oh * ow + p] = from[ch] }
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

/// The buffers of one kernel call, handed to `KernelPool` workers. Each worker writes a
/// disjoint part of `output` and only reads the rest, which is what makes sharing them sound.
/// A read-only pointer handed to kernel workers.
struct SharedPointer: @unchecked Sendable {
    let pointer: UnsafePointer<Float>
}

struct SharedBuffers: @unchecked Sendable {
    let input: UnsafePointer<Float>
    let weight: UnsafePointer<Float>
    let bias: UnsafePointer<Float>?
    let output: UnsafeMutablePointer<Float>
}

/// body(the array's base address), or body(nil) when there is no array: for kernels that take
/// an optional operand (a bias, packed weights) held as an optional array.
@inline(__always)
public func withOptionalPointer<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) throws -> R) rethrows -> R {
    guard let array else { return try body(nil) }
    return try array.withUnsafeBufferPointer { try body($0.baseAddress) }
}
