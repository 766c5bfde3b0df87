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
        var sums = [Float](repeating: 0, count: width * height)
        var counts = [Float](repeating: 0, count: width * height)
        let bpp = frame.pixelFormat.bytesPerPixel
        let (r, g, b): (Int, Int, Int) = frame.pixelFormat == .bgr24 ? (2, 1, 0) : (0, 1, 2)
        frame.pixels.withUnsafeBufferPointer { px in
            for y in 0..<frame.height {
                let ty = y * height / max(frame.height, 1)
                let row = y * frame.width * bpp
                for x in 0..<frame.width {
                    let tx = x * width / max(frame.width, 1)
                    let o = row + x * bpp
                    let luma: Float = bpp == 1 ? Float(px[o])
                        : Float((77 * Int(px[o + r]) + 150 * Int(px[o + g]) + 29 * Int(px[o + b])) >> 8)
                    sums[ty * width + tx] += luma
                    counts[ty * width + tx] += 1
                }
            }
        }
        values = zip(sums, counts).map { $1 > 0 ? $0 / $1 : 0 }
    }

    init(width: Int, height: Int, values: [Float]) {
        self.width = width
        self.height = height
        self.values = values
    }
}
