/// Max or average pooling, NCHW. Average pooling divides by the window cells inside the input
/// unless `countIncludePad` (ONNX's attribute). Out-of-range cells never win a max.
public func pool2d(
    input: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int,
    geometry g: Conv2DGeometry, isMax: Bool, countIncludePad: Bool = false, output: UnsafeMutablePointer<Float>
) {
    let (oh, ow) = g.outputSize(height: height, width: width)
    if isMax && VectorDepthwise.applies(g) {
        VectorDepthwise.maxPool(input: input, planes: batch * channels, height: height, width: width, geometry: g, output: output)
        return
    }
    if isMax && g.dilationH == 1 && g.dilationW == 1 {
        maxPoolFast(input: input, planes: batch * channels, height: height, width: width, geometry: g, outH: oh, outW: ow, output: output)
        return
    }
    for plane in 0..<(batch * channels) {
        let src = input + plane * height * width
        let dst = output + plane * oh * ow
        for oy in 0..<oh {
            for ox in 0..<ow {
                var best = -Float.infinity
                var sum: Float = 0
                var cells = 0
                for ky in 0..<g.kernelH {
                    let iy = oy * g.strideH - g.padTop + ky * g.dilationH
                    guard iy >= 0, iy < height else { continue }
                    for kx in 0..<g.kernelW {
                        let ix = ox * g.strideW - g.padLeft + kx * g.dilationW
                        guard ix >= 0, ix < width else { continue }
                        let v = src[iy * width + ix]
                        best = max(best, v)
                        sum += v
                        cells += 1
                    }
                }
                if isMax {
                    dst[oy * ow + ox] = best
                } else {
                    let divisor = countIncludePad ? g.kernelH * g.kernelW : max(cells, 1)
                    dst[oy * ow + ox] = sum / Float(divisor)
                }
            }
        }
    }
}

/// Mean over H×W per (n, c): [N, C, H, W] → [N, C].
public func globalAveragePool(input: UnsafePointer<Float>, planes: Int, spatial: Int, output: UnsafeMutablePointer<Float>) {
    for p in 0..<planes {
        let src = input + p * spatial
        // Eight independent partial sums: a single running sum is one dependent add per
        // element (strict floating point does not let the compiler split it).
        var lanes = SIMD8<Float>()
        var i = 0
        while i + 8 <= spatial {
            lanes += UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self)
            i += 8
        }
        var sum = lanes.sum()
        while i < spatial {
            sum += src[i]
            i += 1
        }
        output[p] = sum / Float(spatial)
    }
}

/// Max pooling without per-cell bounds checks: each output row takes the max of the valid
/// input rows, over the clamped column window.
func maxPoolFast(input: UnsafePointer<Float>, planes: Int, height: Int, width: Int, geometry g: Conv2DGeometry,
                 outH oh: Int, outW ow: Int, output: UnsafeMutablePointer<Float>) {
    // Separable: the max over each row's window first (per output column), then over the
    // window's rows — kH + kW comparisons per output instead of kH·kW, and the second pass
    // runs along contiguous rows.
    let columns = (0..<ow).map { ox in (max(0, ox * g.strideW - g.padLeft), min(width, ox * g.strideW - g.padLeft + g.kernelW)) }
    let rowMax = UnsafeMutablePointer<Float>.allocate(capacity: height * ow)
    defer { rowMax.deallocate() }
    for plane in 0..<planes {
        let src = input + plane * height * width
        let dst = output + plane * oh * ow
        for y in 0..<height {
            let row = src + y * width, out = rowMax + y * ow
            for ox in 0..<ow {
                let (x0, x1) = columns[ox]
                var best = -Float.infinity
                for x in x0..<max(x0, x1) { best = max(best, row[x]) }
                out[ox] = best
            }
        }
        for oy in 0..<oh {
            let y0 = max(0, oy * g.strideH - g.padTop), y1 = min(height, oy * g.strideH - g.padTop + g.kernelH)
            let line = dst + oy * ow
            line.update(repeating: -Float.infinity, count: ow)
            for y in y0..<max(y0, y1) {
                let r = rowMax + y * ow
                for ox in 0..<ow { line[ox] = max(line[ox], r[ox]) }
            }
        }
    }
}
