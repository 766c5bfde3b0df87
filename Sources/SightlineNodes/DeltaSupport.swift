import Foundation
import SightlineCore
import SightlineGraph
import SightlineInference
import SightlineModels

/// What a model node needs for delta inference: the `regions` record of each frame (from an
/// upstream `regions` node), the per-source activation cache, the last results (reused for
/// skipped frames, marked `reused`), and the work-saved counters it reports on the status topic.
final class DeltaSupport: ReusedResults {
    static let options: [OptionSpec] = [
        OptionSpec("delta", .bool, default: .bool(false), help: "recompute only what changed (needs a `regions` node upstream); reuse results of skipped frames"),
        OptionSpec("dense_above", .double, default: .double(0.3), min: 0, max: 1, help: "delta: a layer whose changed outputs exceed this fraction runs dense"),
        OptionSpec("truncation", .double, default: .double(0), min: 0, max: 10, help: "delta: per-layer changes below this fraction of the layer's mean magnitude stop spreading (0: exact)"),
        OptionSpec("min_saving", .double, default: .double(0.2), min: 0, max: 1, help: "delta: a masked run that saved less than this fraction of the work makes the next frames run plain (2, 4, … 32 of them) before trying again"),
    ]

    /// `delta: true` reads the `regions` node's decisions.
    static let needs = [NodeContract.Need(anyOf: [.regions], when: .init("delta", is: .bool(true)),
                                          hint: "add a regions node before it (e.g. `- cam -> regions`, `- regions -> labels`), or set delta: false")]

    struct Counters {
        var frames = 0
        var reused = 0
        var denseMACs = 0.0
        var computedMACs = 0.0
        var seconds = 0.0
    }

    let node: String
    let denseAbove: Double
    let truncation: Float
    let minSaving: Double
    private var regions: [String: [Int: ChangedRegions]] = [:]
    private var states: [String: DeltaState] = [:]
    private var lastResults: [String: [Record]] = [:]
    private(set) var counters: [String: Counters] = [:]
    private var reported: [String: Int] = [:]

    init(node: String, options: NodeOptions) {
        self.node = node
        denseAbove = options.double("dense_above") ?? 0.3
        truncation = Float(options.double("truncation") ?? 0)
        minSaving = options.double("min_saving") ?? 0.2
    }

    func observe(_ record: Record) {
        guard case .regions(let region) = record.value else { return }
        regions[record.sourceID, default: [:]][region.frameIndex] = region
    }

    /// Per frame, in order: `compute` (delta) or the last results reused, per its `regions` record.
    func results(for frames: [Frame], compute: (Frame, TileMask?, DeltaState) throws -> ([Record], DeltaStats)) throws -> [[Record]] {
        try frames.map { frame in try results(for: frame) { try compute(frame, $0, $1) } }
    }

    /// Runs `compute` (delta) or reuses the last results, per the frame's `regions` record.
    func results(for frame: Frame, compute: (TileMask?, DeltaState) throws -> ([Record], DeltaStats)) throws -> [Record] {
        let source = frame.sourceID
        let region = regions[source]?.removeValue(forKey: frame.decodeIndex)
        // Records of frames that never came (dropped upstream) are not kept forever.
        if let pending = regions[source], pending.count > 64 { regions[source] = pending.filter { $0.key > frame.decodeIndex } }
        var c = counters[source] ?? Counters()
        c.frames += 1
        defer { counters[source] = c }
        if region?.skip == true, let last = lastResults[source] {
            c.reused += 1
            return last.map { $0.standing(for: frame) }
        }
        let tiles = region.flatMap { $0.refresh ? nil : $0.tiles }
        let state = states[source] ?? DeltaState()
        states[source] = state
        let started = DispatchTime.now().uptimeNanoseconds
        let (records, stats) = try compute(tiles, state)
        c.seconds += Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        c.denseMACs += stats.denseMACs
        c.computedMACs += stats.computedMACs
        lastResults[source] = records
        return records.map { record in
            var r = record
            r.delta = .computed(changedInput: stats.changedInput, workSaved: stats.savedFraction)
            return r
        }
    }

    /// A `delta` status every `every` frames of a source (and at its end).
    func status(for source: String, every: Int, final: Bool, context: any NodeContext) -> StatusEvent? {
        guard let c = counters[source], c.frames > 0, final || c.frames - (reported[source] ?? 0) >= every else { return nil }
        reported[source] = c.frames
        if final {
            counters[source] = nil
            states[source] = nil
            lastResults[source] = nil
            regions[source] = nil
            reported[source] = nil
        }
        let total = c.denseMACs * Double(c.frames) / Double(max(c.frames - c.reused, 1))
        return StatusEvent(.delta(DeltaSummary(node: node, frames: c.frames, reused: c.reused,
                                               workSaved: total > 0 ? 1 - c.computedMACs / total : 0, modelSeconds: c.seconds)),
                           sourceID: source, wallClock: context.clock.now())
    }
}
