import SightlineCore
import SightlineKernels

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
        // Each cell averages the source pixels it covers (at least one, so a frame smaller than
        // the thumbnail is upsampled by nearest neighbour). The rows' luma and the cells' sums
        // run in C (`LumaCells`): the Swift loop was 2 % of batch.yaml's CPU on 720p.
        // `LumaThumbnailTests` keeps the plain per-pixel version as the reference.
        let xStart = (0..<width).map { $0 * fw / width }
        let xEnd = (0..<width).map { max($0 * fw / width + 1, ($0 + 1) * fw / width) }
        var sums = [Int](repeating: 0, count: width)
        let luma = UnsafeMutablePointer<UInt16>.allocate(capacity: fw)
        defer { luma.deallocate() }
        frame.pixels.withUnsafeBufferPointer { px in
            guard let base = px.baseAddress else { return }
            for ty in 0..<height {
                let y0 = ty * fh / height
                let y1 = max(y0 + 1, (ty + 1) * fh / height)
                for tx in 0..<width { sums[tx] = 0 }
                LumaCells.addRows(base, width: fw, rows: y0..<y1, bytesPerPixel: bpp, channels: (r, g, b), starts: xStart, ends: xEnd,
                                  into: &sums, scratch: luma)
                for tx in 0..<width {
                    values[ty * width + tx] = Float(sums[tx]) / Float((y1 - y0) * (xEnd[tx] - xStart[tx]))
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
