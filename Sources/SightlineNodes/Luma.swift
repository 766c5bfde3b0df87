import SightlineCore

/// Luma (BT.601, integer weights) of a packed frame, averaged down to a `width`×`height`
/// thumbnail by area. Shared by the frame statistics and perceptual hash nodes.
struct LumaThumbnail: Equatable {
    var width: Int
    var height: Int
    var values: [Float]  // 0...255

    init(frame: Frame, width: Int, height: Int) {
        self.width = width
        self.height = height
        var values = [Float](repeating: 0, count: width * height)
        let bpp = frame.pixelFormat.bytesPerPixel
        let (r, g, b): (Int, Int, Int) = frame.pixelFormat == .bgr24 ? (2, 1, 0) : (0, 1, 2)
        let fw = frame.width, fh = frame.height
        guard fw > 0, fh > 0, frame.pixels.count >= fw * fh * bpp else {
            self.values = values
            return
        }
        frame.pixels.withUnsafeBufferPointer { px in
            // Each cell averages the source pixels it covers (at least one, so a frame smaller
            // than the thumbnail is upsampled by nearest neighbour).
            for ty in 0..<height {
                let y0 = ty * fh / height
                let y1 = max(y0 + 1, (ty + 1) * fh / height)
                for tx in 0..<width {
                    let x0 = tx * fw / width
                    let x1 = max(x0 + 1, (tx + 1) * fw / width)
                    var sum = 0
                    for y in y0..<y1 {
                        let row = y * fw * bpp
                        for x in x0..<x1 {
                            let o = row + x * bpp
                            sum += bpp == 1 ? Int(px[o]) : (77 * Int(px[o + r]) + 150 * Int(px[o + g]) + 29 * Int(px[o + b])) >> 8
                        }
                    }
                    values[ty * width + tx] = Float(sum) / Float((y1 - y0) * (x1 - x0))
                }
            }
        }
        self.values = values
    }

    init(width: Int, height: Int, values: [Float]) {
        self.width = width
        self.height = height
        self.values = values
    }
}
