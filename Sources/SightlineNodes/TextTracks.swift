import SightlineCore

/// OCR readings of one shot grouped into text tracks: a line whose box overlaps a line of the
/// previous frames (IoU ≥ `minOverlap`) is the same text read again, possibly misread. Each
/// track keeps its readings; its best reading is the one read most often (then the most
/// confident). Salience ranks tracks for quoting: large, central and steady text first.
public struct TextTracks: Sendable {
    public struct Track: Sendable, Equatable {
        public var readings: [String: (count: Int, confidence: Double)]
        public var box: PixelBox
        public var frames: Int
        public var heightSum: Double
        public var centrality: Double
        public var firstSeen: Double

        /// The reading seen most often, then the most confident.
        public var best: String {
            readings.max { a, b in
                a.value.count != b.value.count ? a.value.count < b.value.count : a.value.confidence < b.value.confidence
            }?.key ?? ""
        }

        public static func == (a: Track, b: Track) -> Bool {
            a.best == b.best && a.box == b.box && a.frames == b.frames
        }
    }

    public var minOverlap: Double
    public private(set) var tracks: [Track] = []
    public private(set) var framesSeen = 0
    /// Tracks matched in the latest frame (indices into `tracks`), for continuity.
    private var frameHeight = 0.0

    public init(minOverlap: Double = 0.4) {
        self.minOverlap = minOverlap
    }

    public mutating func add(_ text: OnScreenText, at time: Double) {
        framesSeen += 1
        if text.height > 0 { frameHeight = Double(text.height) }
        var used = Set<Int>()
        for line in text.lines {
            let box = Self.bounds(line.box)
            let centrality = Self.centrality(box, width: text.width, height: text.height)
            // Lines without a box (text fed in alone) match by their text.
            let match = box.area > 0
                ? tracks.indices.filter { !used.contains($0) && tracks[$0].box.iou(box) >= minOverlap }.max { tracks[$0].box.iou(box) < tracks[$1].box.iou(box) }
                : tracks.indices.first { !used.contains($0) && tracks[$0].box.area == 0 && tracks[$0].readings[line.text] != nil }
            if let index = match {
                used.insert(index)
                var track = tracks[index]
                let previous = track.readings[line.text]
                track.readings[line.text] = ((previous?.count ?? 0) + 1, max(previous?.confidence ?? 0, line.confidence))
                track.box = box
                track.frames += 1
                track.heightSum += box.height
                track.centrality += centrality
                tracks[index] = track
            } else {
                used.insert(tracks.count)
                tracks.append(Track(readings: [line.text: (1, line.confidence)], box: box, frames: 1, heightSum: box.height,
                                    centrality: centrality, firstSeen: time))
            }
        }
    }

    /// Tracks, most salient first: mean height against the frame (large), mean centrality
    /// (central) and the share of the shot's frames it was read in (steady), multiplied.
    public func ranked() -> [Track] {
        let scale = frameHeight > 0 ? frameHeight : max(tracks.map { $0.heightSum / Double($0.frames) }.max() ?? 1, 1)
        func salience(_ t: Track) -> Double {
            let size = t.heightSum / Double(t.frames) / scale
            let steady = Double(t.frames) / Double(max(framesSeen, 1))
            return size * (0.5 + t.centrality / Double(t.frames)) * (0.5 + steady)
        }
        return tracks.sorted { salience($0) != salience($1) ? salience($0) > salience($1) : $0.firstSeen < $1.firstSeen }
    }

    static func bounds(_ corners: [PixelPoint]) -> PixelBox {
        let xs = corners.map(\.x), ys = corners.map(\.y)
        let x0 = xs.min() ?? 0, y0 = ys.min() ?? 0
        return PixelBox(x: x0, y: y0, width: (xs.max() ?? 0) - x0, height: (ys.max() ?? 0) - y0)
    }

    /// 1 at the frame's centre, 0 at a corner (0.5 when the frame size is unknown).
    static func centrality(_ box: PixelBox, width: Int, height: Int) -> Double {
        guard width > 0, height > 0 else { return 0.5 }
        let dx = (box.centre.x / Double(width) - 0.5) * 2, dy = (box.centre.y / Double(height) - 0.5) * 2
        return max(0, 1 - (dx * dx + dy * dy).squareRoot() / 2.0.squareRoot())
    }
}
