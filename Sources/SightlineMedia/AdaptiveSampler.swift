import SightlineCore

/// Settings of shot-aware sampling: sparse inside a shot whose picture holds still, up to
/// `maxRate` where it changes, and the first frame of every cut at once.
public struct AdaptiveSampling: Sendable, Equatable, CustomStringConvertible {
    /// Most frames per second kept for change inside a shot.
    public var maxRate: Rational
    /// A still shot still gets a frame this often (seconds).
    public var maxGap: Double
    /// Change between two consecutive decoded frames (ShotSignature.distance) that marks a cut:
    /// that frame is kept, so the shot downstream starts on it.
    public var cut: Float
    /// Share of the picture (grid cells) changed since the last kept frame that asks for a new one.
    public var change: Float
    /// A shot's second frame comes at most this long after its first, even when nothing
    /// changed: what is said about a shot's motion (a static camera, someone staying put) is
    /// read from pairs of frames.
    public var second: Double

    /// Cut frames are kept at least this far apart from each other (a strobe is not a shot per
    /// frame). A keep for change just before a cut does not hold the cut back.
    public static let minCutSpacing = 0.2

    /// The default settings, written once for `init` and for the options that expose them
    /// (source/files, `decode`). Doubles, as the options are: a Float 0.05 would print as
    /// 0.05000000074505806 in their help.
    public enum Defaults {
        public static let maxRate = Rational(2, 1)
        public static let maxGap = 5.0
        public static let cut = 0.3
        public static let change = 0.05
        public static let second = 1.0
    }

    public init(maxRate: Rational = Defaults.maxRate, maxGap: Double = Defaults.maxGap, cut: Float = Float(Defaults.cut),
                change: Float = Float(Defaults.change), second: Double = Defaults.second) {
        self.maxRate = maxRate
        self.maxGap = maxGap
        self.cut = cut
        self.change = change
        self.second = second
    }

    public var description: String {
        "adaptive (≤ \(maxRate.doubleValue) fps, a frame at least every \(maxGap) s and a shot's second within \(second) s, cut \(cut), change \(change))"
    }
}

/// Shot-aware sampling as a pure state machine. Feed every decoded frame's time and luma
/// signature; it says whether to keep the frame and why. Rules, in order:
/// - the first frame is kept;
/// - a cut (the picture differs from the previous decoded frame by more than `cut`) is kept on
///   its own frame, if the last cut kept is at least `minCutSpacing` back;
/// - change (at least `change` of the picture differs from the last kept frame) is kept once
///   `1/maxRate` has passed since the last keep. A keep that is late only because no frame was
///   decoded in time (the decoder skipped them, `mode: nonref`) counts from when it was due,
///   so a picture that keeps changing gets as many frames as a decode of every frame gives;
/// - otherwise a frame is kept once `maxGap` has passed (`second`, if shorter, for a shot's
///   second frame).
/// At the end of a file, `wantsTail` keeps the last frame, so the last shot's span and content
/// reach the end.
public struct AdaptiveSampler: Sendable {
    public enum Reason: String, Sendable, CaseIterable {
        case first, cut, change, gap, tail

        /// Whether a shot may start on a frame kept for this reason. The sampler compared every
        /// decoded frame with the one before it, so a frame kept for change, a gap or the tail
        /// had no cut since the last kept frame, however much a pan moved the picture meanwhile.
        public var mayStartShot: Bool { self == .first || self == .cut }
    }

    /// The frame metadata key (`Frame.metadata`) that holds a kept frame's `Reason`.
    public static let frameMetadataKey = "sl.source.sampled"

    public let settings: AdaptiveSampling
    private var lastKept: (time: Double, signature: ShotSignature)?
    private var previous: ShotSignature?
    private var lastCut: Double?
    /// Frames kept since the shot began (the first frame or the last cut).
    private var keptInShot = 0
    /// When the next keep for change is due.
    private var changeDue: Double?
    /// The time of the frame decided before this one.
    private var previousTime: Double?

    /// Seconds between keeps for change (1/maxRate).
    private let interval: Double

    public init(settings: AdaptiveSampling) {
        self.settings = settings
        interval = settings.maxRate.doubleValue > 0 ? 1 / settings.maxRate.doubleValue : .infinity
    }

    /// After a live reconnect the new stream has its own clock and picture.
    public mutating func reset() {
        lastKept = nil
        previous = nil
        lastCut = nil
        keptInShot = 0
        changeDue = nil
        previousTime = nil
    }

    /// Why this frame is kept, or nil when it is passed over.
    public mutating func decide(time: Double, signature: ShotSignature) -> Reason? {
        let before = previousTime
        defer {
            previous = signature
            previousTime = time
        }
        guard let kept = lastKept else { return startShot(.first, time, signature) }
        let since = time - kept.time
        // A clock running backwards (a discontinuity) starts over rather than stalling.
        if since < 0 { return startShot(.first, time, signature) }
        if let previous, time - (lastCut ?? -.infinity) >= AdaptiveSampling.minCutSpacing - 1e-9, since > 0,
           signature.distance(to: previous) > settings.cut {
            return startShot(.cut, time, signature)
        }
        let due = changeDue ?? kept.time + interval
        if time >= due - 1e-9, since > 0,
           signature.changedCells(from: kept.signature) >= settings.change || signature.distance(to: kept.signature) > settings.cut {
            // No frame came between the due time and this one: count from the due time.
            let next = (before ?? time) < due - 1e-9 ? due + interval : time + interval
            let reason = keep(.change, time, signature)
            changeDue = next
            return reason
        }
        let gap = keptInShot == 1 ? min(settings.second, settings.maxGap) : settings.maxGap
        if since >= gap - 1e-9 { return keep(.gap, time, signature) }
        return nil
    }

    /// End of input: keep the last decoded frame (passed over at `time`) when it lies more than
    /// a sampling interval after the last keep.
    public mutating func wantsTail(time: Double) -> Bool {
        guard let kept = lastKept, time - kept.time >= interval - 1e-9 else { return false }
        lastKept = (time, kept.signature)
        return true
    }

    /// The first frame, or a cut: a shot starts here (the first frame counts as a cut for
    /// the spacing of cuts).
    private mutating func startShot(_ reason: Reason, _ time: Double, _ signature: ShotSignature) -> Reason {
        lastCut = time
        keptInShot = 0
        return keep(reason, time, signature)
    }

    private mutating func keep(_ reason: Reason, _ time: Double, _ signature: ShotSignature) -> Reason {
        lastKept = (time, signature)
        keptInShot += 1
        changeDue = time + interval
        return reason
    }
}
