/// Bilinear resize of a packed 8-bit image (H×W×C) to float, half-pixel centres (ONNX Resize
/// `half_pixel`, align_corners = false). No antialiasing: callers downscaling by more than 2×
/// should resize in steps (or let swscale do it when decoding).
public func resizeBilinear(_ src: UnsafePointer<UInt8>, width: Int, height: Int, channels: Int,
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
