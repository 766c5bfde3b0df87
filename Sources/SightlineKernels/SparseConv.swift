import CSightlineKernels
/// Delta (sparse) convolution: recompute a convolution only where its input changed.
///
/// A change mask says which input positions (of one image, H×W) differ from the input the
/// cached output was computed from. An output position must be recomputed exactly when its
/// receptive field — the kernel window, with stride, padding and dilation — touches a changed
/// input (`dilateMask`); every other output keeps its cached value. DeltaCNN (CVPR 2022) does
/// this on GPUs; here it is im2col over the changed positions only → one GEMM → scatter.

/// The output positions (H'×W') whose window touches a `true` input position.
public func dilateMask(_ mask: [Bool], height: Int, width: Int, geometry g: Conv2DGeometry) -> (mask: [Bool], height: Int, width: Int) {
    let (oh, ow) = g.outputSize(height: height, width: width)
    var out = [Bool](repeating: false, count: max(0, oh * ow))
    guard oh > 0, ow > 0 else { return (out, max(0, oh), max(0, ow)) }
    if g.dilationH == 1 && g.dilationW == 1 {
        // Integral image: each output asks "any change in my window?" in O(1).
        var sum = [Int32](repeating: 0, count: (height + 1) * (width + 1))
        for y in 0..<height {
            var row: Int32 = 0
            for x in 0..<width {
                row += mask[y * width + x] ? 1 : 0
                sum[(y + 1) * (width + 1) + x + 1] = sum[y * (width + 1) + x + 1] + row
            }
        }
        for oy in 0..<oh {
            let y0 = max(0, oy * g.strideH - g.padTop), y1 = min(height, oy * g.strideH - g.padTop + g.kernelH)
            guard y0 < y1 else { continue }
            for ox in 0..<ow {
                let x0 = max(0, ox * g.strideW - g.padLeft), x1 = min(width, ox * g.strideW - g.padLeft + g.kernelW)
                guard x0 < x1 else { continue }
                let count = sum[y1 * (width + 1) + x1] - sum[y0 * (width + 1) + x1] - sum[y1 * (width + 1) + x0] + sum[y0 * (width + 1) + x0]
                out[oy * ow + ox] = count > 0
            }
        }
    } else {
        for oy in 0..<oh {
            for ox in 0..<ow {
                out[oy * ow + ox] = windowTouches(mask, height: height, width: width, g, oy, ox)
            }
        }
    }
    return (out, oh, ow)
}

/// The reference twin of `dilateMask`: every tap of every window, one by one.
public func referenceDilateMask(_ mask: [Bool], height: Int, width: Int, geometry g: Conv2DGeometry) -> [Bool] {
    let (oh, ow) = g.outputSize(height: height, width: width)
    var out = [Bool](repeating: false, count: max(0, oh * ow))
    for oy in 0..<max(0, oh) {
        for ox in 0..<max(0, ow) {
            out[oy * ow + ox] = windowTouches(mask, height: height, width: width, g, oy, ox)
        }
    }
    return out
}

private func windowTouches(_ mask: [Bool], height: Int, width: Int, _ g: Conv2DGeometry, _ oy: Int, _ ox: Int) -> Bool {
    for ky in 0..<g.kernelH {
        let iy = oy * g.strideH - g.padTop + ky * g.dilationH
        guard iy >= 0 && iy < height else { continue }
        for kx in 0..<g.kernelW {
            let ix = ox * g.strideW - g.padLeft + kx * g.dilationW
            if ix >= 0 && ix < width && mask[iy * width + ix] { return true }
        }
    }
    return false
}

/// Recomputes conv2d (one image, NCHW) at the output `positions` (oy·W'+ox) only, writing into
/// `output` ([M, H', W'], holding the previous result); all other outputs are left as they are.
/// Same arithmetic as `conv2d`: bias, then the activation.
public func maskedConv2d(
    input: UnsafePointer<Float>, channels: Int, height: Int, width: Int,
    weight: UnsafePointer<Float>, outChannels: Int, bias: UnsafePointer<Float>?, groups: Int,
    geometry g: Conv2DGeometry, activation: Activation, positions: [Int32],
    output: UnsafeMutablePointer<Float>, packedWeight: UnsafePointer<Float>? = nil
) {
    let (oh, ow) = g.outputSize(height: height, width: width)
    let outSpatial = oh * ow
    let taps = g.kernelH * g.kernelW
    if groups == channels && groups == outChannels {
        // Depthwise: positions come sorted, so they form runs along output rows; each run is
        // computed like the dense kernel, one pass over the run per tap (the compiler
        // vectorises the run when the stride is 1), bounds-checked only at the edges.
        var runs: [(row: Int, start: Int, end: Int)] = []
        var i = 0
        while i < positions.count {
            let p = Int(positions[i]), row = p / ow
            var end = p % ow + 1
            var j = i + 1
            while j < positions.count && end < ow && Int(positions[j]) == row * ow + end { end += 1; j += 1 }
            runs.append((row, p % ow, end))
            i = j
        }
        var line = [Float](repeating: 0, count: ow)
        line.withUnsafeMutableBufferPointer { buffer in
            let line = buffer.baseAddress!
            for c in 0..<channels {
                let plane = input + c * height * width
                let w = weight + c * taps
                let b = bias?[c] ?? 0
                let out = output + c * outSpatial
                for run in runs {
                    let count = run.end - run.start
                    line.update(repeating: b, count: count)
                    for ky in 0..<g.kernelH {
                        let iy = run.row * g.strideH - g.padTop + ky * g.dilationH
                        guard iy >= 0 && iy < height else { continue }
                        let src = plane + iy * width
                        for kx in 0..<g.kernelW {
                            let tap = w[ky * g.kernelW + kx]
                            let x0 = kx * g.dilationW - g.padLeft
                            // Columns of the run whose input lies inside the row.
                            let first = max(run.start, x0 < 0 ? (-x0 + g.strideW - 1) / g.strideW : 0)
                            let last = min(run.end, x0 >= width ? 0 : (width - 1 - x0) / g.strideW + 1)
                            guard first < last else { continue }
                            if g.strideW == 1 {
                                let s = src + x0
                                for ox in first..<last { line[ox - run.start] += tap * s[ox] }
                            } else {
                                for ox in first..<last { line[ox - run.start] += tap * src[ox * g.strideW + x0] }
                            }
                        }
                    }
                    activation.apply(line, count: count)
                    (out + run.row * ow + run.start).update(from: line, count: count)
                }
            }
        }
        return
    }
    // Grouped or dense: gather the changed positions' patches (im2col restricted to them),
    // one GEMM per group and chunk of positions, then scatter.
    let cg = channels / groups, mg = outChannels / groups
    let k = cg * taps
    let chunk = max(1, min(positions.count, 4096))
    var columns = [Float](repeating: 0, count: k * chunk)
    var result = [Float](repeating: 0, count: mg * chunk)
    var originY = [Int](repeating: 0, count: chunk), originX = [Int](repeating: 0, count: chunk)
    for group in 0..<groups {
        var start = 0
        while start < positions.count {
            let n = min(chunk, positions.count - start)
            // Window origins once per chunk (no division in the gather loops).
            for j in 0..<n {
                let p = Int(positions[start + j])
                originY[j] = (p / ow) * g.strideH - g.padTop
                originX[j] = (p % ow) * g.strideW - g.padLeft
            }
            let pointwise = taps == 1 && g.strideH == 1 && g.strideW == 1 && g.padTop == 0 && g.padLeft == 0 && oh == height && ow == width
            columns.withUnsafeMutableBufferPointer { cols in
                for c in 0..<cg {
                    let plane = input + (group * cg + c) * height * width
                    if pointwise {
                        // 1×1, stride 1: the output position is the input position.
                        let row = cols.baseAddress! + c * n
                        for j in 0..<n { row[j] = plane[Int(positions[start + j])] }
                        continue
                    }
                    for ky in 0..<g.kernelH {
                        for kx in 0..<g.kernelW {
                            let row = cols.baseAddress! + ((c * g.kernelH + ky) * g.kernelW + kx) * n
                            let dy = ky * g.dilationH, dx = kx * g.dilationW
                            for j in 0..<n {
                                let iy = originY[j] + dy, ix = originX[j] + dx
                                row[j] = (iy >= 0 && iy < height && ix >= 0 && ix < width) ? plane[iy * width + ix] : 0
                            }
                        }
                    }
                }
            }
            if groups == 1, let packedWeight, let fused = activation.kernelActivation {
                // The dense convolution's packed weights and tiles, bias and activation included.
                columns.withUnsafeBufferPointer { cols in
                    result.withUnsafeMutableBufferPointer { r in
                        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: k * 16)
                        defer { scratch.deallocate() }
                        PackedConv.multiplyPackedA(m: mg, k: k, packed: packedWeight, panels: 0, (mg + 5) / 6, b: cols.baseAddress!, ldb: n,
                                                   n: n, c: r.baseAddress!, ldc: n, bias: bias, activation: fused, scratch: scratch)
                    }
                }
                for m in 0..<mg {
                    let out = output + m * outSpatial
                    for j in 0..<n { out[Int(positions[start + j])] = result[m * n + j] }
                }
                start += n
                continue
            }
            columns.withUnsafeBufferPointer { cols in
                result.withUnsafeMutableBufferPointer { r in
                    gemm(transposeA: false, transposeB: false, m: mg, n: n, k: k,
                         a: weight + group * mg * k, lda: k, b: cols.baseAddress!, ldb: n, c: r.baseAddress!, ldc: n)
                }
            }
            for m in 0..<mg {
                let channel = group * mg + m
                let b = bias?[channel] ?? 0
                let out = output + channel * outSpatial
                for j in 0..<n { out[Int(positions[start + j])] = activation.apply(result[m * n + j] + b) }
            }
            start += n
        }
    }
}
