import SightlineCore
import SightlineGraph
import SightlineMedia

extension ShotSignature {
    /// From a converted frame: a 64×36 area-averaged luma thumbnail for the histogram and mean,
    /// and a 16×9 one for the grid.
    init(frame: Frame) {
        let thumbnail = LumaThumbnail(frame: frame, width: 64, height: 36)
        var bins = [Float](repeating: 0, count: 32)
        for v in thumbnail.values { bins[min(31, Int(v / 8))] += 1 }
        let n = Float(max(thumbnail.values.count, 1))
        self.init(histogram: bins.map { $0 / n }, grid: LumaThumbnail(frame: frame, width: 16, height: 9).values,
                  meanLuma: thumbnail.values.reduce(0, +) / n)
    }
}

/// Content-based shot boundaries as a pure state machine: feed (time, signature) per sampled
/// frame, get back the shots that ended. A cut needs the next frame to stay different from the
/// shot (a one-frame flash is not a cut); a fade through black cuts where the picture comes
/// back; no shot is shorter than `minLength` seconds, and none longer than `maxLength` (when
/// set): a shot that runs on is ended as a `window` at the first frame past it.
public struct ShotDetector: Sendable {
    /// A finished shot and its span.
    public struct Segment: Sendable, Equatable {
        public var index: Int
        public var start: Double
        public var end: Double
        public var reason: Shot.Boundary
    }

    public var threshold: Float
    public var minLength: Double
    public var blackLevel: Float
    /// Longest shot in seconds (0: no limit). Everything downstream that sums up a shot — its
    /// caption, its pooled embeddings, its index row — holds the shot's frames' evidence until
    /// it ends, so an hour-long fixed camera would otherwise hold an hour of it.
    public var maxLength: Double
    private var shotStart: Double?
    private var shotIndex = 0
    private var previous: (time: Double, signature: ShotSignature)?
    private var candidate: (time: Double, before: ShotSignature)?
    private var inBlack = false

    public init(threshold: Float = 0.3, minLength: Double = 0.5, maxLength: Double = 0, blackLevel: Float = 16) {
        self.threshold = threshold
        self.minLength = minLength
        self.maxLength = maxLength
        self.blackLevel = blackLevel
    }

    /// Returns the shot that ended before this frame, if any. `mayCut` false: whoever sampled
    /// the frames saw every frame since the previous one and no cut among them (adaptive
    /// sampling), so however different this frame looks (a pan, someone walking out of a close
    /// shot) it starts no shot by change alone; a fade back from black still does.
    public mutating func push(time: Double, signature: ShotSignature, mayCut: Bool = true) -> Segment? {
        defer { previous = (time, signature) }
        guard let start = shotStart, let prev = previous else {
            shotStart = time
            return nil
        }
        var ended: Segment?
        var flashEnded = false
        if let pending = candidate {
            candidate = nil
            // Still different from the frame before the candidate: a real cut at the candidate.
            // Back to how it was: the candidate was a flash, and this frame is no new candidate.
            if signature.distance(to: pending.before) > threshold {
                if pending.time - start >= minLength { ended = cut(at: pending.time, reason: .cut) }
            } else {
                flashEnded = true
            }
        }
        let dark = signature.meanLuma < blackLevel
        if dark && !inBlack {
            inBlack = true
        } else if !dark && inBlack {
            inBlack = false
            // The picture returns after black: the next shot starts here.
            if ended == nil, let s = shotStart, time - s >= minLength { ended = cut(at: time, reason: .fade) }
        } else if mayCut && !dark && !flashEnded && signature.distance(to: prev.signature) > threshold {
            // A frame that confirms the cut before it can be a cut of its own: under sparse
            // sampling two kept frames in a row can each start a shot.
            candidate = (time, prev.signature)
        }
        // Too long: ended here, unless a cut is pending (the next frame settles it first).
        if ended == nil, candidate == nil, maxLength > 0, let s = shotStart, time - s >= maxLength {
            ended = cut(at: time, reason: .window)
        }
        return ended
    }

    /// End of stream: the last shot.
    public mutating func finish(at time: Double) -> Segment? {
        guard let start = shotStart else { return nil }
        shotStart = nil
        return Segment(index: shotIndex, start: start, end: max(time, start), reason: .end)
    }

    /// The source lost its data after the frame at `lastTime`: the shot ends there, and the
    /// next frame (after the outage) starts a new one, compared with nothing before it.
    public mutating func breakForGap(lastTime: Double) -> Segment? {
        guard let start = shotStart else { return nil }
        let shot = Segment(index: shotIndex, start: start, end: max(lastTime, start), reason: .gap)
        shotIndex += 1
        shotStart = nil
        previous = nil
        candidate = nil
        inBlack = false
        return shot
    }

    private mutating func cut(at time: Double, reason: Shot.Boundary) -> Segment? {
        guard let start = shotStart else { return nil }
        let shot = Segment(index: shotIndex, start: start, end: time, reason: reason)
        shotIndex += 1
        shotStart = time
        return shot
    }
}

/// `shots`: content-based shot segmentation, one `shots` record per shot when it ends.
public final class ShotsNode: NodeProcessor {
    private var detectors: [String: ShotDetector] = [:]
    private var lastTime: [String: Double] = [:]
    private let threshold: Float
    private let minLength: Double
    private let window: Double
    private let maxLength: Double
    private var windows: [String: (start: Double, index: Int)] = [:]

    public static let descriptor = NodeDescriptor(
        name: "shots",
        description: "Shot boundaries from luma histograms (flash- and fade-aware), or fixed windows; a `shots` record per finished segment.",
        role: .transform, inputs: .frames, outputs: .any,
        options: [
            OptionSpec("threshold", .double, default: .double(0.3), min: 0.01, max: 1, help: "picture change (0…1, histogram and layout) that counts as a cut"),
            OptionSpec("min_length", .double, default: .double(0.5), min: 0, max: 3600, help: "shortest shot in seconds"),
            OptionSpec("window", .double, default: .double(0), min: 0, max: 86_400, help: "fixed segments of this many seconds instead of shots (0: content-based shots)"),
            OptionSpec("max_length", .double, default: .double(300), min: 0, max: 86_400,
                       help: "longest shot in seconds: a longer one ends as a `window` segment, so captions, shot vectors and index rows cover at most this much and memory stays flat on a camera that never cuts (0: no limit)"),
        ],
        contract: NodeContract(produces: [.init(.shots)]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(ShotsNode(threshold: Float(options.double("threshold") ?? 0.3), minLength: options.double("min_length") ?? 0.5,
                             window: options.double("window") ?? 0, maxLength: options.double("max_length") ?? 300))
    }

    init(threshold: Float, minLength: Double, window: Double = 0, maxLength: Double = 300) {
        self.threshold = threshold
        self.minLength = minLength
        self.window = window
        self.maxLength = maxLength
    }

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        if window > 0 { return fixedWindows(item, emit: emit) }
        switch item {
        case .frame(let frame):
            var detector = detectors[frame.sourceID] ?? ShotDetector(threshold: threshold, minLength: minLength, maxLength: maxLength)
            if frame.gapBefore != nil, let last = lastTime[frame.sourceID], let shot = detector.breakForGap(lastTime: last) {
                emit(.record(record(shot, source: frame.sourceID, ingest: nil)))
            }
            let signature = ShotSignature(frame: frame)
            let sampled = frame.metadata[AdaptiveSampler.frameMetadataKey].flatMap(AdaptiveSampler.Reason.init(rawValue:))
            if let shot = detector.push(time: frame.seconds, signature: signature, mayCut: sampled?.mayStartShot ?? true) {
                emit(.record(record(shot, source: frame.sourceID, ingest: frame.ingestWallClock)))
            }
            detectors[frame.sourceID] = detector
            lastTime[frame.sourceID] = frame.seconds
            emit(item)
        case .endOfStream(let eos):
            if var detector = detectors[eos.sourceID], let shot = detector.finish(at: lastTime[eos.sourceID] ?? 0) {
                emit(.record(record(shot, source: eos.sourceID, ingest: nil)))
            }
            detectors[eos.sourceID] = nil
            lastTime[eos.sourceID] = nil
        case .record, .status:
            emit(item)
        }
    }

    /// Segments of `window` seconds of media time, starting at each source's first frame.
    private func fixedWindows(_ item: Item, emit: (Item) -> Void) {
        switch item {
        case .frame(let frame):
            var current = windows[frame.sourceID] ?? (frame.seconds, 0)
            if frame.gapBefore != nil, windows[frame.sourceID] != nil {
                // An outage ends the window at the last frame before it; a new one starts here.
                let shot = ShotDetector.Segment(index: current.index, start: current.start, end: lastTime[frame.sourceID] ?? current.start, reason: .gap)
                emit(.record(record(shot, source: frame.sourceID, ingest: nil)))
                current = (frame.seconds, current.index + 1)
            } else if frame.seconds >= current.start + window {
                let shot = ShotDetector.Segment(index: current.index, start: current.start, end: frame.seconds, reason: .window)
                emit(.record(record(shot, source: frame.sourceID, ingest: frame.ingestWallClock)))
                current = (frame.seconds, current.index + 1)
            }
            windows[frame.sourceID] = current
            lastTime[frame.sourceID] = frame.seconds
            emit(item)
        case .endOfStream(let eos):
            if let current = windows.removeValue(forKey: eos.sourceID) {
                let shot = ShotDetector.Segment(index: current.index, start: current.start, end: lastTime[eos.sourceID] ?? current.start, reason: .end)
                emit(.record(record(shot, source: eos.sourceID, ingest: nil)))
            }
            lastTime[eos.sourceID] = nil
        case .record, .status:
            emit(item)
        }
    }

    private func record(_ shot: ShotDetector.Segment, source: String, ingest: Double?) -> Record {
        Record(.shot(Shot(index: shot.index, endedBy: shot.reason)), sourceID: source, start: shot.start, end: shot.end,
               ingestWallClock: ingest, provenance: [Provenance(name: "shots-histogram", version: "1")])
    }
}
