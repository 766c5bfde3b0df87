import SightlineCore
import SightlineGraph

/// Pools frame embeddings over a segment: per embedding space, the mean of the unit vectors
/// timed inside the segment, normalised again. Pure: feed vectors, get segment vectors.
public struct SegmentPooler: Sendable {
    struct Entry {
        var time: Double
        var vector: [Float]
        var provenance: [Provenance]
    }

    public struct Pooled: Sendable {
        public var space: String
        public var vector: [Float]
        public var frames: Int
        public var provenance: [Provenance]
    }

    private var entries: [String: [Entry]] = [:]
    private var spaceOrder: [String] = []

    public init() {}

    public mutating func add(space: String, time: Double, vector: [Float], provenance: [Provenance] = []) {
        if entries[space] == nil { spaceOrder.append(space) }
        entries[space, default: []].append(Entry(time: time, vector: vector, provenance: provenance))
    }

    /// One pooled vector per space for [start, end) (or [start, end] when `final`); the
    /// vectors timed later stay for the next segment.
    public mutating func finish(end: Double, final: Bool) -> [Pooled] {
        var result: [Pooled] = []
        for space in spaceOrder {
            let all = entries[space] ?? []
            let inside = all.filter { final ? $0.time <= end : $0.time < end }
            entries[space] = all.filter { !(final ? $0.time <= end : $0.time < end) }
            guard let dimension = inside.first?.vector.count, dimension > 0 else { continue }
            var sum = [Float](repeating: 0, count: dimension)
            for entry in inside where entry.vector.count == dimension {
                for d in 0..<dimension { sum[d] += entry.vector[d] }
            }
            let norm = max(sum.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
            var provenance: [Provenance] = []
            for p in inside.flatMap(\.provenance) where !provenance.contains(p) { provenance.append(p) }
            result.append(Pooled(space: space, vector: sum.map { $0 / norm }, frames: inside.count, provenance: provenance))
        }
        return result
    }
}

/// `segment_embeddings`: one embedding per segment (the `shots` node's shots or windows) and
/// per space — the visual 1280-d EfficientNet feature and the 384-d MiniLM (ConSE) vector —
/// pooled from the frame embeddings upstream; frame embeddings pass on only with `per_frame`.
public final class SegmentEmbeddingsNode: NodeProcessor {
    private var poolers: [String: SegmentPooler] = [:]
    private let perFrame: Bool

    public static let descriptor = NodeDescriptor(
        name: "segment_embeddings",
        description: "Per-segment embeddings (mean of the frame embeddings in each shot/window, unit length), kind `embeddings`, scope `segment`.",
        role: .transform, inputs: .records, outputs: .records,
        options: [
            OptionSpec("per_frame", .bool, default: .bool(false), help: "also pass on the per-frame embeddings"),
        ],
        contract: NodeContract(needs: [
            .init(anyOf: [.embeddings], hint: "add a node that makes frame embeddings before it (labels with embeddings: true, or semantic)"),
            .init(anyOf: [.shots], hint: "add a shots node before it: embeddings are pooled per shot (or per window: shots with window: N)"),
        ], produces: [.init(.embeddings)]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(SegmentEmbeddingsNode(perFrame: options.bool("per_frame") ?? false))
    }

    init(perFrame: Bool) {
        self.perFrame = perFrame
    }

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        switch item {
        case .record(let record):
            switch record.value {
            case .embedding(let embedding):
                guard case .frame = embedding.scope else {
                    emit(item)
                    return
                }
                poolers[record.sourceID, default: SegmentPooler()].add(space: embedding.space, time: record.start, vector: embedding.vector,
                                                                      provenance: record.provenance)
                if perFrame { emit(item) }
            case .shot(let shot):
                emit(item)
                // A segment ended by a cut stops before the cut frame; the last one includes its end.
                guard var pooler = poolers[record.sourceID] else { return }
                for pooled in pooler.finish(end: record.end, final: shot.includesEnd) {
                    let embedding = Embedding(space: pooled.space, scope: .segment(index: shot.index, frames: pooled.frames), vector: pooled.vector)
                    emit(.record(Record(.embedding(embedding), sourceID: record.sourceID, start: record.start, end: record.end,
                                        ingestWallClock: record.ingestWallClock, provenance: pooled.provenance)))
                }
                poolers[record.sourceID] = shot.includesEnd ? nil : pooler
            default:
                emit(item)
            }
        case .endOfStream(let eos):
            poolers[eos.sourceID] = nil
        default:
            emit(item)
        }
    }
}
