/// Bilinear resize of a packed 8-bit image (H×W×C) to float, half-pixel centres (ONNX Resize
/// `half_pixel`, align_corners = false). No antialiasing: callers downscaling by more than 2×
/// should resize in steps (or let swscale do it when decoding).
///
/// Separable, with the same arithmetic as `referenceResizeBilinear` in the same order, so the
/// output is bit-identical: each output column's source columns and weight are computed once,
/// each source row is interpolated along x once (two rows cached), and output rows blend two
/// such rows. The reference recomputes all of that for every pixel and channel; OCR's 720p →
/// 960×544 detector input spent about 8 ms a frame in it.
public func resizeBilinear(_ src: UnsafePointer<UInt8>, width: Int, height: Int, channels: Int,
                           toWidth ow: Int, toHeight oh: Int, output: UnsafeMutablePointer<Float>) {
    guard width > 0, height > 0, channels > 0, ow > 0, oh > 0 else { return }
    let sx = Float(width) / Float(ow), sy = Float(height) / Float(oh)
    let rowLength = ow * channels
    // Per output column: the two source columns' offsets (in elements) and the weight.
    let left = UnsafeMutablePointer<Int>.allocate(capacity: ow), right = UnsafeMutablePointer<Int>.allocate(capacity: ow)
    let weight = UnsafeMutablePointer<Float>.allocate(capacity: ow)
    let rows = UnsafeMutablePointer<Float>.allocate(capacity: 2 * rowLength)
    defer { left.deallocate(); right.deallocate(); weight.deallocate(); rows.deallocate() }
    for ox in 0..<ow {
        let fx = max(0, (Float(ox) + 0.5) * sx - 0.5)
        let x0 = min(Int(fx), width - 1), x1 = min(x0 + 1, width - 1)
        left[ox] = x0 * channels
        right[ox] = x1 * channels
        weight[ox] = fx - Float(x0)
    }
    var cached = (-1, -1)  // the source row held in each of the two row buffers
    func interpolated(_ y: Int, keeping other: Int) -> UnsafeMutablePointer<Float> {
        if cached.0 == y { return rows }
        if cached.1 == y { return rows + rowLength }
        let slot = cached.0 == other ? 1 : 0
        let row = rows + slot * rowLength, line = src + y * width * channels
        @inline(__always) func lerp(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ c: Int, _ wx: Float) -> Float {
            let pa = Float(a[c]), pb = Float(b[c])
            return pa + (pb - pa) * wx
        }
        if channels == 3 {  // the usual case, unrolled: the loop over channels cost as much as the arithmetic
            for ox in 0..<ow {
                let a = line + left[ox], b = line + right[ox], wx = weight[ox], out = row + ox * 3
                out[0] = lerp(a, b, 0, wx)
                out[1] = lerp(a, b, 1, wx)
                out[2] = lerp(a, b, 2, wx)
            }
        } else {
            for ox in 0..<ow {
                let a = line + left[ox], b = line + right[ox], wx = weight[ox], out = row + ox * channels
                for c in 0..<channels { out[c] = lerp(a, b, c, wx) }
            }
        }
        if slot == 0 { cached.0 = y } else { cached.1 = y }
        return row
    }
    for oy in 0..<oh {
        let fy = max(0, (Float(oy) + 0.5) * sy - 0.5)
        let y0 = min(Int(fy), height - 1), y1 = min(y0 + 1, height - 1)
        let wy = fy - Float(y0)
        let top = interpolated(y0, keeping: y1), bottom = interpolated(y1, keeping: y0)
        let out = output + oy * rowLength
        for i in 0..<rowLength { out[i] = top[i] + (bottom[i] - top[i]) * wy }
    }
}

/// The definition `resizeBilinear` is tested against: every pixel and channel on its own.
public func referenceResizeBilinear(_ src: UnsafePointer<UInt8>, width: Int, height: Int, channels: Int,
                                    toWidth ow: Int, toHeight oh: Int, output: UnsafeMutablePointer<Float>) {
    let sx = Float(width) / Float(ow), sy = Float(height) / Float(oh)
    for oy in 0..<oh {
        let fy = max(0, (Float(oy) + 0.5) * sy - 0.5)
        let y0 = min(Int(fy), height - 1), y1 = min(y0 + 1, height - 1)
        let wy = fy - Float(y0)
        for ox in 0..<ow {
            let fx = max(0, (Float(ox) + 0.5) * sx - 0.5)
            let x0 = min(Int(fx), width - 1), x1 = min(x0 + 1, width - 1)
            let wx = fx - Float(x0)
            for c in 0..<channels {
                let a = Float(src[(y0 * width + x0) * channels + c]), b = Float(src[(y0 * width + x1) * channels + c])
                let d = Float(src[(y1 * width + x0) * channels + c]), e = Float(src[(y1 * width + x1) * channels + c])
                let top = a + (b - a) * wx, bottom = d + (e - d) * wx
                output[(oy * ow + ox) * channels + c] = top + (bottom - top) * wy
            }
        }
    }
}
