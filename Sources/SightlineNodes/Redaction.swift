import SightlineCore

/// How a hidden region is made unreadable.
public enum RedactionStyle: String, Sendable, CaseIterable {
    /// Blocks of one averaged colour (1/5 of the region's shorter side, at least 8 px: finer
    /// blocks left faces the detector still found).
    case pixelate
    /// A wide box blur (three passes, radius 1/4 of the region's shorter side), then pixelated
    /// lightly so no fine detail survives.
    case blur
    /// A solid black box.
    case fill
}

/// Hides boxes in a frame's pixels. Pure: a frame and boxes in, the frame changed in place.
public enum Redactor {
    /// Each box is grown by `margin` of its size on every side first (hair, ears, a chin the
    /// detector's box leaves out) and clipped to the frame.
    public static func apply(_ frame: inout Frame, boxes: [PixelBox], style: RedactionStyle, margin: Double = 0.25) {
        guard frame.pixelFormat.bytesPerPixel == 3 || frame.pixelFormat == .gray8, frame.pixels.count >= frame.rowBytes * frame.height else { return }
        for box in boxes {
            let grown = PixelBox(x: box.x - box.width * margin, y: box.y - box.height * margin,
                                 width: box.width * (1 + 2 * margin), height: box.height * (1 + 2 * margin)).clipped(width: frame.width, height: frame.height)
            let x0 = Int(grown.x.rounded(.down)), y0 = Int(grown.y.rounded(.down))
            let x1 = Int((grown.x + grown.width).rounded(.up)), y1 = Int((grown.y + grown.height).rounded(.up))
            guard x1 > x0, y1 > y0 else { continue }
            let shorter = min(x1 - x0, y1 - y0)
            switch style {
            case .pixelate:
                pixelate(&frame, x0, y0, x1, y1, block: max(8, shorter / 5))
            case .blur:
                let radius = max(2, shorter / 4)
                for _ in 0..<3 { boxBlur(&frame, x0, y0, x1, y1, radius: radius) }
                pixelate(&frame, x0, y0, x1, y1, block: max(4, shorter / 16))
            case .fill:
                fill(&frame, x0, y0, x1, y1)
            }
        }
    }

    static func pixelate(_ frame: inout Frame, _ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, block: Int) {
        let bpp = frame.pixelFormat.bytesPerPixel, row = frame.rowBytes
        frame.pixels.withUnsafeMutableBufferPointer { px in
            for by in stride(from: y0, to: y1, by: block) {
                for bx in stride(from: x0, to: x1, by: block) {
                    let ey = min(by + block, y1), ex = min(bx + block, x1)
                    var sums = [Int](repeating: 0, count: bpp)
                    for y in by..<ey { for x in bx..<ex { for c in 0..<bpp { sums[c] += Int(px[y * row + x * bpp + c]) } } }
                    let n = (ey - by) * (ex - bx)
                    for y in by..<ey { for x in bx..<ex { for c in 0..<bpp { px[y * row + x * bpp + c] = UInt8(sums[c] / n) } } }
                }
            }
        }
    }

    /// A horizontal then a vertical running-sum box blur inside the region (edges clamp).
    static func boxBlur(_ frame: inout Frame, _ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, radius: Int) {
        let bpp = frame.pixelFormat.bytesPerPixel, row = frame.rowBytes
        let w = x1 - x0, h = y1 - y0
        func pass(length: Int, lines: Int, offset: (Int, Int) -> Int) {
            var line = [Int](repeating: 0, count: length)
            frame.pixels.withUnsafeMutableBufferPointer { px in
                for l in 0..<lines {
                    for c in 0..<bpp {
                        for i in 0..<length { line[i] = Int(px[offset(l, i) + c]) }
                        var sum = 0
                        for k in -radius...radius { sum += line[min(max(k, 0), length - 1)] }
                        let width = 2 * radius + 1
                        for i in 0..<length {
                            px[offset(l, i) + c] = UInt8(sum / width)
                            sum += line[min(i + radius + 1, length - 1)] - line[max(i - radius, 0)]
                        }
                    }
                }
            }
        }
        pass(length: w, lines: h) { l, i in (y0 + l) * row + (x0 + i) * bpp }
        pass(length: h, lines: w) { l, i in (y0 + i) * row + (x0 + l) * bpp }
    }

    static func fill(_ frame: inout Frame, _ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int) {
        let bpp = frame.pixelFormat.bytesPerPixel, row = frame.rowBytes
        frame.pixels.withUnsafeMutableBufferPointer { px in
            for y in y0..<y1 { for i in (y * row + x0 * bpp)..<(y * row + x1 * bpp) { px[i] = 0 } }
        }
    }
}

/// Which boxes to hide in which frame, so that no frame shows a face the detector found in a
/// neighbouring frame: a pure state machine over frames in order.
///
/// - Every detection hides its box (privacy errs on hiding: no confirmation wait).
/// - A tracker follows faces; a face the detector misses for up to `coast` frames stays
///   hidden at its predicted box.
/// - Frames are held `lookback` frames: a face first found at frame k is also hidden in the
///   held frames before it (a face turning towards the camera is often found a few frames
///   late), at the box it was first found at.
/// - Frames the detector did not run on (`detections == nil`, detecting every Nth frame) are
///   covered by the tracks around them.
public struct RedactionPlanner<Payload: Sendable>: Sendable {
    public struct Released: Sendable {
        public var payload: Payload
        public var boxes: [PixelBox]
    }

    public let lookback: Int
    private var tracker: MultiObjectTracker
    private var held: [(payload: Payload, boxes: [PixelBox])] = []
    private var known: Set<Int> = []

    public init(lookback: Int = 5, coast: Int = 5) {
        self.lookback = max(0, lookback)
        var configuration = MultiObjectTracker.Configuration()
        configuration.minHits = 1
        configuration.confidentScore = 0
        configuration.maxMisses = max(0, coast)
        configuration.maxGap = .infinity
        configuration.minIoU = 0.1
        tracker = MultiObjectTracker(configuration: configuration)
    }

    /// One frame: its payload, the faces found in it (nil when the detector did not run on
    /// it) and its media time. Returns the frames that leave the buffer, oldest first.
    public mutating func push(_ payload: Payload, detections: [PixelBox]?, at time: Double) -> [Released] {
        let update = tracker.update((detections ?? []).map { TrackedDetection(label: "face", box: $0, score: 1) }, at: time)
        var boxes = update.tracks.map(\.box)
        // Raw detections too: a box the tracker has not matched yet is still a face.
        for detection in detections ?? [] where !boxes.contains(where: { $0.iou(detection) > 0.5 }) { boxes.append(detection) }
        for track in update.tracks where !known.contains(track.id) {
            known.insert(track.id)
            for i in held.indices { held[i].boxes.append(track.box) }
        }
        held.append((payload, boxes))
        var out: [Released] = []
        while held.count > lookback {
            let first = held.removeFirst()
            out.append(Released(payload: first.payload, boxes: first.boxes))
        }
        return out
    }

    /// The end: every held frame.
    public mutating func finish() -> [Released] {
        defer { held.removeAll() }
        return held.map { Released(payload: $0.payload, boxes: $0.boxes) }
    }
}
