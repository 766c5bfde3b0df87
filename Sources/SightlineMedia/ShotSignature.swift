import CFFmpeg

/// A frame's appearance for shot detection: a 32-bin luma histogram (what is in the picture)
/// and a 16×9 luma grid (where it is), plus the mean luma (for fades through black).
/// The shots node builds it from converted frames; the adaptive sampler from the decoder's own
/// luma plane, before any conversion is paid for.
public struct ShotSignature: Sendable, Equatable {
    public static let gridWidth = 16
    public static let gridHeight = 9

    public var histogram: [Float]
    public var grid: [Float]
    public var meanLuma: Float

    public init(histogram: [Float], grid: [Float], meanLuma: Float) {
        self.histogram = histogram
        self.grid = grid
        self.meanLuma = meanLuma
    }

    /// 0 (same picture) … 1: the mean of the histogram distance (half the L1 distance) and the
    /// grid's mean absolute luma change (a quarter of the luma range counts as complete change).
    public func distance(to other: ShotSignature) -> Float {
        let histogramDistance = zip(histogram, other.histogram).reduce(0) { $0 + abs($1.0 - $1.1) } / 2
        guard grid.count == other.grid.count, !grid.isEmpty else { return histogramDistance }
        let gridChange = zip(grid, other.grid).reduce(0) { $0 + abs($1.0 - $1.1) } / Float(grid.count)
        return (histogramDistance + min(1, gridChange / 64)) / 2
    }

    /// The share of grid cells (0…1) whose mean luma moved by more than `levels`. Unlike
    /// `distance`, a change confined to a corner (a caption appearing, someone entering) is not
    /// averaged away over the still rest of the picture.
    public func changedCells(from other: ShotSignature, levels: Float = 10) -> Float {
        guard grid.count == other.grid.count, !grid.isEmpty else { return 1 }
        let changed = zip(grid, other.grid).reduce(0) { $0 + (abs($1.0 - $1.1) > levels ? 1 : 0) }
        return Float(changed) / Float(grid.count)
    }

    /// From an 8-bit luma plane, read on a sparse lattice: 8×8 points per grid cell (9,216 reads
    /// for any frame size), which is what makes it cheap enough for every decoded frame. Nil for
    /// planes too small for the lattice.
    public init?(luma: UnsafePointer<UInt8>, stride: Int, width: Int, height: Int) {
        let gw = Self.gridWidth, gh = Self.gridHeight, points = 8
        guard width >= gw, height >= gh, stride >= width else { return nil }
        var grid = [Float](repeating: 0, count: gw * gh)
        var bins = [Float](repeating: 0, count: 32)
        var total = 0
        for cy in 0..<gh {
            for cx in 0..<gw {
                var sum = 0
                for py in 0..<points {
                    // Point centres of an even 8×8 lattice inside the cell.
                    let y = ((cy * points + py) * 2 + 1) * height / (2 * gh * points)
                    let row = luma + y * stride
                    for px in 0..<points {
                        let x = ((cx * points + px) * 2 + 1) * width / (2 * gw * points)
                        let v = Int(row[x])
                        sum += v
                        bins[v >> 3] += 1
                    }
                }
                grid[cy * gw + cx] = Float(sum) / Float(points * points)
                total += sum
            }
        }
        let n = Float(gw * gh * points * points)
        self.init(histogram: bins.map { $0 / n }, grid: grid, meanLuma: Float(total) / n)
    }

    /// From a decoded frame whose first plane is 8-bit luma (the YUV and gray formats);
    /// nil for other formats (RGB, high bit depth, hardware frames).
    init?(decoded frame: UnsafePointer<AVFrame>) {
        guard sl_frame_has_luma8(frame) != 0, let plane = frame.pointee.data.0 else { return nil }
        let stride = Int(frame.pointee.linesize.0)
        self.init(luma: UnsafePointer(plane), stride: stride, width: Int(frame.pointee.width), height: Int(frame.pointee.height))
    }
}
