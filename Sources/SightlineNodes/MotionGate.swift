import Foundation
import SightlineCore
import SightlineGraph
import SightlineMedia

/// Whether a model runs on a sampled frame of one source or stands by its last results: a pure
/// state machine fed by the `regions` node's decision for the frame. Nothing changed (the
/// regions node marked the frame `skip`) and the last computed result is younger than `maxAge`
/// seconds of media time: reuse. A result younger than `minInterval` stands whatever changed
/// (`hold`: the node runs at most that often), except on a frame that starts a shot. Anything
/// else computes: a change, no decision for the frame (its regions record never came, or there
/// is no regions node), time going backwards (a new file or a looped source), or a result that
/// has grown too old (the periodic refresh that catches what the threshold missed).
public struct MotionGate: Sendable, Equatable {
    public enum Decision: Sendable, Equatable {
        case compute
        /// Nothing changed: the last results stand.
        case reuse
        /// Too soon after the last computed frame (`minInterval`): the last results stand.
        case hold
    }

    /// Seconds of media time a result may stand for later unchanged frames.
    public let maxAge: Double
    /// Seconds of media time a result stands for any later frame (0: none).
    public let minInterval: Double
    /// Media time of the frame last computed.
    public private(set) var lastComputed: Double?

    public init(maxAge: Double, minInterval: Double = 0) {
        self.maxAge = maxAge
        self.minInterval = minInterval
    }

    /// The decision for the frame at `seconds`; `skip` is the regions node's (nil: none).
    /// `startsShot`: the sampler kept the frame for a cut (or as the first), so nothing from
    /// before it may stand for it, however soon it comes.
    public mutating func next(skip: Bool?, at seconds: Double, startsShot: Bool = false) -> Decision {
        if let last = lastComputed, seconds >= last, !startsShot {
            if seconds - last < minInterval { return .hold }
            if skip == true, seconds - last < maxAge { return .reuse }
        }
        lastComputed = seconds
        return .compute
    }
}

/// `gate: true` on a model node: frames the `regions` node upstream marks unchanged reuse the
/// node's last results for that source (marked `reused`), so a fixed camera looking at an empty
/// scene costs no model time. Per source: the regions decisions seen, a `MotionGate`, the last
/// results, and counters reported on the status topic (as `delta` events: frames, reused).
final class GatedReuse: ReusedResults {
    static let options: [OptionSpec] = [
        OptionSpec("gate", .bool, default: .bool(false),
                   help: "run only on frames where a regions node upstream saw a change; other frames reuse the last results (marked `reused`)"),
        OptionSpec("gate_refresh", .double, default: .double(10), min: 0.1, max: 86_400,
                   help: "gate: recompute at least this often (seconds of media time), changed or not"),
        OptionSpec("interval", .double, default: .double(0), min: 0, max: 86_400,
                   help: "run at most once per this many seconds of media time per source; frames in between reuse the last results (marked `reused`), whatever changed, so something shown for less than this may be missed; a frame the adaptive sampler kept for a cut always runs; 0: every frame"),
    ]

    static let needs = [NodeContract.Need(anyOf: [.regions], when: .init("gate", is: .bool(true)),
                                          hint: "add a regions node before it (e.g. `- cam -> regions`, `- regions -> NODE`), or set gate: false")]

    struct Counters {
        var frames = 0
        var reused = 0
        var seconds = 0.0
    }

    let node: String
    let maxAge: Double
    /// Asked about a frame the gate would reuse: true computes it anyway (the OCR node: a line
    /// it read shows other pixels). Its time counts as the node's model time.
    var wake: ((Frame) -> Bool)?
    private var skips: [String: FrameTable<Bool>] = [:]
    private var gates: [String: MotionGate] = [:]
    private var last: [String: [Record]] = [:]
    private var counters: [String: Counters] = [:]
    private var reported: [String: Int] = [:]

    let minInterval: Double
    /// Only `interval` (no `gate`): every frame counts as changed, nothing waits for regions.
    let intervalOnly: Bool

    init(node: String, options: NodeOptions) {
        self.node = node
        maxAge = options.double("gate_refresh") ?? 10
        minInterval = options.double("interval") ?? 0
        intervalOnly = !(options.bool("gate") ?? false) && minInterval > 0
    }

    /// Whether a model node reuses results at all (`gate: true`, or an `interval`).
    static func wanted(_ options: NodeOptions) -> Bool {
        (options.bool("gate") ?? false) || (options.double("interval") ?? 0) > 0
    }

    /// `delta: true` reuses results its own way, so an `interval` beside it would be ignored:
    /// refused instead.
    static func check(_ options: NodeOptions) throws {
        if options.bool("delta") ?? false, let interval = options.double("interval"), interval > 0 {
            throw SightlineError.invalidOption(name: "interval", value: String(interval),
                                               hint: "delta: true reuses results itself; use one of delta and interval")
        }
    }

    func observe(_ record: Record) {
        guard !intervalOnly, case .regions(let region) = record.value else { return }
        skips[record.sourceID, default: FrameTable(capacity: 64)].set(region.skip, for: region.frameIndex)
    }

    /// The records of each frame: `compute` runs once on the frames the gates let through (as
    /// one batch); the others take their source's last results, in frame order.
    func results(for frames: [Frame], compute: ([Frame]) throws -> [[Record]]) throws -> [[Record]] {
        let asked = DispatchTime.now().uptimeNanoseconds
        let decisions = frames.map { frame -> MotionGate.Decision in
            let skip = skips[frame.sourceID]?.take(frame.decodeIndex)
            var gate = gates[frame.sourceID] ?? MotionGate(maxAge: maxAge, minInterval: minInterval)
            defer { gates[frame.sourceID] = gate }
            let decision = gate.next(skip: skip, at: frame.seconds,
                                     startsShot: frame.metadata[AdaptiveSampler.frameMetadataKey].flatMap(AdaptiveSampler.Reason.init)?.mayStartShot ?? false)
            // Only an unchanged frame wakes: a held one may have moved, and its known lines' boxes with it.
            if decision == .reuse, let wake, wake(frame) { return gate.next(skip: false, at: frame.seconds) }
            return decision
        }
        let askedSeconds = wake == nil ? 0 : Double(DispatchTime.now().uptimeNanoseconds - asked) / 1e9 / Double(max(frames.count, 1))
        let started = DispatchTime.now().uptimeNanoseconds
        let toCompute = zip(frames, decisions).filter { $0.1 == .compute }.map(\.0)
        let computed = toCompute.isEmpty ? [] : try compute(toCompute)
        // Every model node answers with one list per frame it was given.
        guard computed.count == toCompute.count else { preconditionFailure("\(node): \(computed.count) results for \(toCompute.count) frames") }
        let secondsPerFrame = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 / Double(max(toCompute.count, 1))
        var next = computed.makeIterator()
        var out: [[Record]] = []
        for (frame, decision) in zip(frames, decisions) {
            var c = counters[frame.sourceID] ?? Counters()
            c.frames += 1
            c.seconds += askedSeconds
            if decision == .compute, let records = next.next() {
                c.seconds += secondsPerFrame
                last[frame.sourceID] = records
                out.append(records)
            } else {
                // A gate reuses only after it computed, and that frame came first.
                c.reused += 1
                out.append((last[frame.sourceID] ?? []).map { $0.standing(for: frame) })
            }
            counters[frame.sourceID] = c
        }
        return out
    }

    /// A `delta` status (frames, reused) every `every` frames of a source, and at its end.
    func status(for source: String, every: Int, final: Bool, context: any NodeContext) -> StatusEvent? {
        guard let c = counters[source], c.frames > 0, final || c.frames - (reported[source] ?? 0) >= every else { return nil }
        reported[source] = c.frames
        if final {
            counters[source] = nil
            gates[source] = nil
            last[source] = nil
            skips[source] = nil
            reported[source] = nil
        }
        return StatusEvent(.delta(DeltaSummary(node: node, frames: c.frames, reused: c.reused,
                                               workSaved: Double(c.reused) / Double(c.frames), modelSeconds: c.seconds)),
                           sourceID: source, wallClock: context.clock.now())
    }
}

/// What a model node that reuses results (delta inference, motion gating) is told and asks.
protocol ReusedResults: AnyObject {
    /// Keeps what the frames' `regions` records decided.
    func observe(_ record: Record)
    /// The source's counters as a status event, every `every` frames and at its end (`final`).
    func status(for source: String, every: Int, final: Bool, context: any NodeContext) -> StatusEvent?
}

extension Record {
    /// This result standing for `frame` (a later frame of its source where nothing changed):
    /// the frame's index and time, marked `reused`.
    func standing(for frame: Frame) -> Record {
        var r = self
        r.value = value.reused(forFrame: frame.decodeIndex)
        r.start = frame.seconds
        r.end = frame.seconds
        r.ingestWallClock = frame.ingestWallClock
        r.delta = .reused
        return r
    }
}
