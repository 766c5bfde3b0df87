import Testing
import SightlineKernels

/// The region selector's C pixel loops against a direct per-sample definition.
@Suite struct FrameDifferenceTests {
    static func pixels(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
    }

    static let lumaCases = [(37, 9, 3, 0, 2), (64, 8, 3, 2, 0), (33, 5, 1, 0, 0), (19, 7, 4, 1, 3)]

    /// Widths with and without a vector tail, odd heights, RGB, BGR, gray and 4-byte pixels; the
    /// portable build of the row loop.
    @Test(arguments: lumaCases)
    func sampledLumaMatchesTheDefinition(_ t: (Int, Int, Int, Int, Int)) {
        KernelConfig.with(InstructionSets.portable) { checkSampledLuma(t) }
    }

    /// The same on the AVX2 build of the RGB/BGR row loop.
    @Test(.enabled(if: InstructionSets.avx2, InstructionSets.needsAVX2), arguments: lumaCases)
    func sampledLumaOnAVX2MatchesTheDefinition(_ t: (Int, Int, Int, Int, Int)) {
        checkSampledLuma(t)
    }

    private func checkSampledLuma(_ t: (Int, Int, Int, Int, Int)) {
        let (width, height, bpp, red, blue) = t
        let new = Self.pixels(width * height * bpp, seed: 1), old = Self.pixels(width * height * bpp, seed: 2)
        let sw = (width + 1) / 2, sh = (height + 1) / 2
        var expected = [Int16](), expectedTotal = 0
        for sy in 0..<sh {
            for sx in 0..<sw {
                let o = (sy * 2 * width + sx * 2) * bpp
                let d: Int
                if bpp == 1 {
                    d = Int(new[o]) - Int(old[o])
                } else {
                    let r = Int(new[o + red]) - Int(old[o + red]), g = Int(new[o + 1]) - Int(old[o + 1]), b = Int(new[o + blue]) - Int(old[o + blue])
                    d = (77 * r + 150 * g + 29 * b) >> 8
                }
                expected.append(Int16(d))
                expectedTotal += d
            }
        }
        var got = [Int16](repeating: 0, count: sw * sh)
        let total = new.withUnsafeBufferPointer { n in
            old.withUnsafeBufferPointer { o in
                got.withUnsafeMutableBufferPointer {
                    FrameDifference.sampledLuma(new: n.baseAddress!, old: o.baseAddress!, width: width, height: height, bytesPerPixel: bpp,
                                                channels: (red, 1, blue), into: $0.baseAddress!)
                }
            }
        }
        #expect(got == expected)
        #expect(total == expectedTotal)
    }

    /// Tiles of odd and even sizes, with a partial last column and row of tiles.
    @Test(arguments: [5, 8, 16])
    func movedSamplesCountPerTile(tileSize: Int) {
        let width = 45, height = 23
        let sw = (width + 1) / 2, sh = (height + 1) / 2
        let differences = Self.pixels(sw * sh, seed: 3).map { Int16($0) - 128 }
        let columns = (width + tileSize - 1) / tileSize, rows = (height + tileSize - 1) / tileSize
        var counts = [Int32](repeating: 0, count: columns * rows), moved = counts
        var expectedCounts = counts, expectedMoved = counts
        for sy in 0..<sh {
            for sx in 0..<sw {
                let tile = (sy * 2 / tileSize) * columns + sx * 2 / tileSize
                expectedCounts[tile] += 1
                if abs(Int(differences[sy * sw + sx]) - 3) > 40 { expectedMoved[tile] += 1 }
            }
        }
        differences.withUnsafeBufferPointer { d in
            counts.withUnsafeMutableBufferPointer { c in
                moved.withUnsafeMutableBufferPointer { m in
                    FrameDifference.movedSamples(d.baseAddress!, width: width, height: height, tileSize: tileSize, columns: columns,
                                                 shift: 3, limit: 40, counts: c.baseAddress!, moved: m.baseAddress!)
                }
            }
        }
        #expect(counts == expectedCounts)
        #expect(moved == expectedMoved)
    }
}
