import Foundation
import SightlineCore
import SightlineTestSupport
import Testing
@testable import SightlineMedia

/// swscale's x86 paths store whole vectors past the end of a row whose width is not a multiple
/// of their step (up to 45 bytes, measured with a sentinel). The link fuzzer found the heap
/// corrupted by a 3-pixel-wide JPEG before the decoder scaled into padded rows; the fuzz
/// regression (under ASan) keeps that input. Here: odd sizes round-trip.
@Suite struct ConversionSpillTests {
    @Test func oddSizedJPEGsRoundTrip() throws {
        let encoder = JPEGEncoder(qscale: 2), decoder = JPEGDecoder(maxPixels: 1 << 20)
        for (w, h) in [(3, 2), (5, 7), (31, 9), (45, 3)] {
            let pixels = (0..<(w * h * 3)).map { UInt8(90 + 2 * (($0 / 3) % w) + 3 * (($0 / 3) / w)) }
            let jpeg = try encoder.encodeFullSize(pixels, width: w, height: h, format: .rgb24)
            let back = try decoder.decode(jpeg, format: .rgb24)
            #expect(back.width == w && back.height == h && back.pixels.count == w * h * 3)
            let error = zip(back.pixels, pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
            #expect(error < 40, "\(w)x\(h): max error \(error) \(Array(back.pixels.prefix(12))) \(Array(pixels.prefix(12)))")
        }
        #expect(throws: (any Error).self) { try decoder.decode(Data([0xff, 0xd8, 0xff, 0xe0, 0, 1]), format: .rgb24) }
    }
}
