import CSightlineKernels

/// The luma thumbnail's pixel loop (`sl_luma_cell_sums`), in C: the frame statistics, camera
/// motion and perceptual hash read every pixel of every sampled frame through it, and the
/// Swift loop did not vectorise (2 % of batch.yaml's CPU on a 720p clip).
public enum LumaCells {
    /// Adds the luma (BT.601 integer weights, >> 8 per pixel; the byte itself with one byte per
    /// pixel) of rows `rows` of a packed frame to `sums`, per cell of columns
    /// `starts[c]..<ends[c]`. `channels` are the byte offsets of red, green and blue.
    public static func addRows(_ pixels: UnsafePointer<UInt8>, width: Int, rows: Range<Int>, bytesPerPixel bpp: Int,
                               channels: (red: Int, green: Int, blue: Int), starts: [Int], ends: [Int], into sums: inout [Int],
                               scratch: UnsafeMutablePointer<UInt16>) {
        precondition(starts.count == ends.count && sums.count >= starts.count, "one start and end per cell")
        starts.withUnsafeBufferPointer { s in
            ends.withUnsafeBufferPointer { e in
                sums.withUnsafeMutableBufferPointer { out in
                    sl_luma_cell_sums(pixels, width, rows.lowerBound, rows.upperBound, Int32(bpp), Int32(channels.red),
                                      Int32(channels.green), Int32(channels.blue), s.baseAddress, e.baseAddress, starts.count,
                                      out.baseAddress, scratch, KernelConfig.current.hasAVX2)
                }
            }
        }
    }
}
