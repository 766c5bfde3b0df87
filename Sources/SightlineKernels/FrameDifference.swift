import CSightlineKernels

/// Pixel loops of the region selector (SightlineNodes' `RegionSelector`), in C
/// (`sl_sampled_luma_difference`, `sl_moved_samples`) because they run on every sampled frame
/// (230 k samples for a 720p frame) and the Swift loops did not vectorise (~1 ms a frame).
public enum FrameDifference {
    /// Luma change new − old (BT.601 weights, in 8-bit levels) of every second pixel of every
    /// second row of two packed frames, written as [ceil(h/2)][ceil(w/2)]; returns their sum
    /// (the global brightness shift is sum ÷ count). `channels` are the byte offsets of red,
    /// green and blue within a pixel; with one byte per pixel the byte itself is the luma.
    public static func sampledLuma(new: UnsafePointer<UInt8>, old: UnsafePointer<UInt8>, width: Int, height: Int, bytesPerPixel bpp: Int,
                                   channels: (red: Int, green: Int, blue: Int), into differences: UnsafeMutablePointer<Int16>) -> Int {
        let row = UnsafeMutablePointer<Int16>.allocate(capacity: max(width, 1))
        defer { row.deallocate() }
        return sl_sampled_luma_difference(new, old, width, height, Int32(bpp), Int32(channels.red), Int32(channels.green),
                                          Int32(channels.blue), differences, row, KernelConfig.current.hasAVX2)
    }

    /// Per tile of `tileSize` pixels (`columns` across): how many samples it holds, and how
    /// many moved by more than `limit` once `shift` is taken off (both added to the counters).
    public static func movedSamples(_ differences: UnsafePointer<Int16>, width: Int, height: Int, tileSize: Int, columns: Int,
                                    shift: Int, limit: Int, counts: UnsafeMutablePointer<Int32>, moved: UnsafeMutablePointer<Int32>) {
        sl_moved_samples(differences, width, height, tileSize, columns, shift, limit, counts, moved)
    }
}
