import SightlineCore

/// Which decoded frames go on to conversion and the graph.
public enum SamplingPolicy: Sendable, Equatable, CustomStringConvertible {
    /// Every decoded frame.
    case all
    /// Every Nth decoded frame, starting with the first (N ≥ 1).
    case everyNth(Int)
    /// N frames per second of media time: the media timeline from the first frame is cut into
    /// slots of 1/N s and the first frame falling in each slot is kept.
    case perSecond(Rational)
    /// Shot-aware: decided per frame from its picture by `AdaptiveSampler` (in the source);
    /// frames without an 8-bit luma plane fall back to `maxRate` frames per second.
    case adaptive(AdaptiveSampling)

    public var description: String {
        switch self {
        case .all: "all"
        case .everyNth(let n): "every \(n)th frame"
        case .perSecond(let r): "\(r.doubleValue) fps"
        case .adaptive(let settings): settings.description
        }
    }
}

/// A pure state machine deciding, per decoded frame, whether to keep it. It sees only the
/// frame's timestamp, so the decision is made before any pixel conversion is paid for.
/// Arithmetic on slots is exact (integer pts × time base × rate), so picks are reproducible.
public struct FrameSampler: Sendable {
    public let policy: SamplingPolicy
    private var seen = 0
    private var origin: Timestamp?
    private var lastSlot: Int64?

    public init(policy: SamplingPolicy) {
        self.policy = policy
    }

    /// Forget the timeline origin (after a live reconnect the new stream has its own clock).
    public mutating func reset() {
        seen = 0
        origin = nil
        lastSlot = nil
    }

    /// Returns true when the frame with this timestamp should be kept.
    public mutating func shouldKeep(_ timestamp: Timestamp) -> Bool {
        defer { seen += 1 }
        switch policy {
        case .all:
            return true
        case .everyNth(let n):
            return seen % max(n, 1) == 0
        case .perSecond(let rate):
            return keepPerSecond(timestamp, rate: rate)
        case .adaptive(let settings):
            return keepPerSecond(timestamp, rate: settings.maxRate)
        }
    }

    /// Starts the slots afresh at a kept frame (`mode: sampled` does so at each kept keyframe,
    /// so the slots follow the keyframes even when the stream's clock drifts against the
    /// nominal rate). The frame counts as its slot's pick.
    public mutating func anchor(at timestamp: Timestamp) {
        guard case .perSecond = policy else { return }
        origin = timestamp
        lastSlot = 0
    }

    /// One slot's length in `timeBase` ticks (N per second only).
    public func slotTicks(timeBase: Rational) -> Int64? {
        guard case .perSecond(let rate) = policy, rate.numerator > 0, timeBase.numerator > 0 else { return nil }
        let ticks = (Double(rate.denominator) * Double(timeBase.denominator)) / (Double(rate.numerator) * Double(timeBase.numerator))
        return ticks.isFinite && ticks >= 1 && ticks < 1e15 ? Int64(ticks) : nil
    }

    /// Whether a frame not yet seen, with a timestamp before `end`, would be kept (N per
    /// second only; any other policy, or before the first frame, answers yes). Frames come in
    /// rising order, so only the last instant before `end` matters.
    public func keepsAny(before end: Timestamp) -> Bool {
        guard case .perSecond(let rate) = policy, let origin, let lastSlot else { return true }
        return Self.slot(of: Timestamp(pts: end.pts - 1, timeBase: end.timeBase), from: origin, rate: rate) > lastSlot
    }

    private mutating func keepPerSecond(_ timestamp: Timestamp, rate: Rational) -> Bool {
        guard let origin else {
            self.origin = timestamp
            lastSlot = 0
            return true
        }
        let slot = Self.slot(of: timestamp, from: origin, rate: rate)
        // Frames before the origin (B-frame reordering at the very start, or a backwards
        // jump) never open a new slot.
        if let lastSlot, slot <= lastSlot { return false }
        lastSlot = slot
        return true
    }

    /// floor((t - origin) × rate), computed in integers: elapsed pts × tb.num × rate.num /
    /// (tb.den × rate.den). Falls back to Double only if the products would overflow.
    static func slot(of t: Timestamp, from origin: Timestamp, rate: Rational) -> Int64 {
        if t.timeBase == origin.timeBase {
            let elapsed = t.pts - origin.pts
            let (num1, o1) = elapsed.multipliedReportingOverflow(by: t.timeBase.numerator)
            let (num, o2) = num1.multipliedReportingOverflow(by: rate.numerator)
            let (den, o3) = t.timeBase.denominator.multipliedReportingOverflow(by: rate.denominator)
            if !o1 && !o2 && !o3 && den > 0 {
                return floorDivide(num, den)
            }
        }
        let elapsed = t.seconds - origin.seconds
        return Int64((elapsed * rate.doubleValue).rounded(.down))
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }
}
