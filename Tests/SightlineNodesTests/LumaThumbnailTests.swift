import Testing
import SightlineCore
@testable import SightlineNodes

/// The thumbnail reads each row of a cell with the pixel format decided once; this is the plain
/// per-pixel version it replaced, kept as its reference. Integer sums, so they must match exactly.
@Suite struct LumaThumbnailTests {
    private func reference(_ frame: Frame, width: Int, height: Int) -> [Float] {
        let bpp = frame.pixelFormat.bytesPerPixel
        let (r, g, b) = frame.pixelFormat == .bgr24 ? (2, 1, 0) : (0, 1, 2)
        let fw = frame.width, fh = frame.height
        var values = [Float](repeating: 0, count: width * height)
        for ty in 0..<height {
            let y0 = ty * fh / height, y1 = max(y0 + 1, (ty + 1) * fh / height)
            for tx in 0..<width {
                let x0 = tx * fw / width, x1 = max(x0 + 1, (tx + 1) * fw / width)
                var sum = 0
                for y in y0..<y1 {
                    for x in x0..<x1 {
                        let o = (y * fw + x) * bpp
                        let p = frame.pixels
                        sum += bpp == 1 ? Int(p[o]) : (77 * Int(p[o + r]) + 150 * Int(p[o + g]) + 29 * Int(p[o + b])) >> 8
                    }
                }
                values[ty * width + tx] = Float(sum) / Float((y1 - y0) * (x1 - x0))
            }
        }
        return values
    }

    @Test(arguments: PixelFormat.allCases)
    func matchesThePerPixelReference(format: PixelFormat) {
        var generator = SystemRandomNumberGenerator()
        // Downsampled (even and uneven cells), the same size, and upsampled (a frame smaller
        // than the thumbnail repeats its pixels).
        for (fw, fh, tw, th) in [(1280, 720, 64, 36), (333, 101, 32, 32), (64, 36, 64, 36), (20, 9, 64, 36), (1, 1, 3, 2)] {
            let pixels = (0..<fw * fh * format.bytesPerPixel).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let frame = Frame(sourceID: "cam", decodeIndex: 0, timestamp: Timestamp(pts: 0, timeBase: Rational(1, 25)), seconds: 0,
                              ingestWallClock: 0, isKeyframe: true, width: fw, height: fh, pixelFormat: format, pixels: pixels)
            let fast = LumaThumbnail(frame: frame, width: tw, height: th).values, plain = reference(frame, width: tw, height: th)
            let differing = zip(fast, plain).filter { $0 != $1 }.count
            #expect(fast.count == plain.count && differing == 0, "\(format) \(fw)x\(fh) → \(tw)x\(th): \(differing) of \(plain.count) cells differ")
        }
    }
}
