import SightlineCore

/// One window of the text detector's input to run again, in detection pixels: the detector sees
/// `x..<x+width, y..<y+height` and its probabilities are kept only inside `keep`, where the
/// window gives every point at least `context` pixels of surroundings (or the image's own edge,
/// which the whole-frame run sees too).
public struct DetectionWindow: Sendable, Equatable {
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int
    public var keep: (x0: Int, y0: Int, x1: Int, y1: Int)

    public static func == (a: DetectionWindow, b: DetectionWindow) -> Bool {
        a.x == b.x && a.y == b.y && a.width == b.width && a.height == b.height
            && a.keep.x0 == b.keep.x0 && a.keep.y0 == b.keep.y0 && a.keep.x1 == b.keep.x1 && a.keep.y1 == b.keep.y1
    }
}

/// Where the text detector must look again when only some tiles of a frame changed. DB text
/// detection is a convolutional network, so a probability far enough from every changed pixel
/// is nearly what it was. Nearly: PP-OCRv4's detector has ten squeeze-and-excitation blocks
/// (global average pools, which the reader freezes at the last whole frame's values), and on
/// ambiguous textures its reach is wide (measured on vtest.avi: a window with 64 pixels of
/// context still differed by up to 1.0 over people it took for text; 256 pixels matched). On
/// screens, slides and tickers, text is crisp and a window matches (`OCRChangedTilesTests`).
/// The planner marks the detection grid's cells within `influence` pixels of a changed tile,
/// and gives each group of touching marked cells one window over their bounds with `context`
/// pixels around it, its sides rounded up to a multiple of `sizeStep`. Windows start on the network's stride (32), so their
/// features line up with the whole-frame run's. When the windows would cost more than
/// `maxCost` of the whole input, the answer is nil: run the whole frame.
public struct DetectionWindowPlanner: Sendable, Equatable {
    /// Cell size and context in detection pixels (multiples of the network's stride, 32).
    public var cell: Int
    public var context: Int
    /// How far (detection pixels) a changed pixel may move a probability.
    public var influence: Int
    public var maxCost: Double
    /// Window sides round up to a multiple of this (detection pixels), so a screen's changes
    /// reuse a few plans rather than building one per size.
    public var sizeStep: Int

    public init(cell: Int = 64, context: Int = 64, influence: Int = 16, maxCost: Double = 0.6, sizeStep: Int = 128) {
        self.cell = max(32, cell / 32 * 32)
        self.context = max(0, context / 32 * 32)
        self.influence = max(0, influence)
        self.maxCost = maxCost
        self.sizeStep = max(32, sizeStep / 32 * 32)
    }

    /// The windows for `changed` tiles of a `frameWidth`×`frameHeight` frame whose detection
    /// input is `width`×`height`; [] when nothing changed; nil: run the whole frame.
    public func windows(changed: TileMask, frameWidth: Int, frameHeight: Int, width: Int, height: Int) -> [DetectionWindow]? {
        guard frameWidth > 0, frameHeight > 0, width > 0, height > 0 else { return nil }
        let columns = (width + cell - 1) / cell, rows = (height + cell - 1) / cell
        var marked = [Bool](repeating: false, count: columns * rows)
        let sx = Double(width) / Double(frameWidth), sy = Double(height) / Double(frameHeight)
        for row in 0..<changed.rows {
            for column in 0..<changed.columns where changed[row, column] {
                // The tile in detection pixels, grown by the influence, then the cells it touches.
                let x0 = Double(column * changed.tileSize) * sx - Double(influence), x1 = Double((column + 1) * changed.tileSize) * sx + Double(influence)
                let y0 = Double(row * changed.tileSize) * sy - Double(influence), y1 = Double((row + 1) * changed.tileSize) * sy + Double(influence)
                let c0 = max(0, Int(x0) / cell), c1 = min(columns - 1, Int(x1.rounded(.up)) / cell)
                let r0 = max(0, Int(y0) / cell), r1 = min(rows - 1, Int(y1.rounded(.up)) / cell)
                guard c0 <= c1, r0 <= r1 else { continue }
                for r in r0...r1 { for c in c0...c1 { marked[r * columns + c] = true } }
            }
        }
        // Each group of touching marked cells (8-neighbours) gets one window over its bounds.
        var windows: [DetectionWindow] = []
        var area = 0
        var seen = [Bool](repeating: false, count: marked.count)
        for start in marked.indices where marked[start] && !seen[start] {
            var stack = [start]
            seen[start] = true
            var bounds = (c0: start % columns, r0: start / columns, c1: start % columns, r1: start / columns)
            while let i = stack.popLast() {
                let c = i % columns, r = i / columns
                bounds = (min(bounds.c0, c), min(bounds.r0, r), max(bounds.c1, c), max(bounds.r1, r))
                for dr in -1...1 {
                    for dc in -1...1 {
                        let nc = c + dc, nr = r + dr
                        guard nc >= 0, nr >= 0, nc < columns, nr < rows else { continue }
                        let j = nr * columns + nc
                        if marked[j] && !seen[j] { seen[j] = true; stack.append(j) }
                    }
                }
            }
            let keep = (x0: bounds.c0 * cell, y0: bounds.r0 * cell, x1: min((bounds.c1 + 1) * cell, width), y1: min((bounds.r1 + 1) * cell, height))
            func side(_ kept: Int, _ limit: Int) -> Int { min(limit, (kept + 2 * context + sizeStep - 1) / sizeStep * sizeStep) }
            let w = side(keep.x1 - keep.x0, width), h = side(keep.y1 - keep.y0, height)
            // Slid inside the image: the context is on both sides, or the image's edge is.
            let x = min(max(0, keep.x0 - context), width - w), y = min(max(0, keep.y0 - context), height - h)
            windows.append(DetectionWindow(x: x, y: y, width: w, height: h, keep: keep))
            area += w * h
        }
        return Double(area) > maxCost * Double(width * height) ? nil : windows
    }
}
