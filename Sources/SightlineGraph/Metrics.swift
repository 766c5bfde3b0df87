import Histogram
import SightlineCore
import Synchronization

/// Counters shared by the scheduler, nodes and sinks; read by the heartbeat and at the end.
public final class GraphMetrics: Sendable {
    public struct NodeStats: Sendable, Equatable {
        public var items = 0
        public var busySeconds = 0.0
        public var errors = 0
    }

    public struct Snapshot: Sendable {
        public var nodes: [String: NodeStats]
        /// Frames dropped by edge policies, per source.
        public var drops: [String: Int]
        /// Messages a sink could not deliver (e.g. publisher high-water mark), per source.
        public var sinkDrops: [String: Int]
        public var framesIn: [String: Int]
        /// Ingest-to-sink latency since the start, overall and per source (HdrHistogram, in µs).
        public var latency: LatencyHistogram
        public var latencyBySource: [String: LatencyHistogram]
        /// Since the last heartbeat (`GraphMetrics.takeRecentLatency`).
        public var recentLatency: LatencyHistogram

        /// Seconds, from the whole run.
        public func latencyPercentile(_ p: Double) -> Double? { latency.percentile(p) }
    }

    /// Latencies recorded in microseconds from 1 µs to 1 hour with two significant digits
    /// (1 % resolution in a few kilobytes): percentiles without keeping or sorting samples.
    public struct LatencyHistogram: Sendable {
        public private(set) var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000,
                                                              numberOfSignificantValueDigits: .two)
        public private(set) var sumSeconds = 0.0

        public init() {}

        public var count: UInt64 { histogram.totalCount }

        public mutating func record(seconds: Double) {
            let micros = UInt64(min(max(seconds, 0) * 1e6, 3_600_000_000).rounded())
            _ = histogram.record(Swift.max(micros, 1))
            sumSeconds += max(seconds, 0)
        }

        /// The value at percentile `p` (0–100), in seconds; nil before the first sample.
        public func percentile(_ p: Double) -> Double? {
            guard histogram.totalCount > 0 else { return nil }
            return Double(histogram.valueAtPercentile(p)) / 1e6
        }
    }

    /// Per-node counters on the hot path: atomics owned by one runner, so processing an item
    /// never takes a lock shared with other nodes (a shared mutex cost ~30 µs per item on two
    /// contended cores).
    public final class NodeCounters: Sendable {
        let items = Atomic<Int>(0)
        let busyNanoseconds = Atomic<Int>(0)
        let errors = Atomic<Int>(0)

        public func processed(nanoseconds: Int) {
            items.add(1, ordering: .relaxed)
            busyNanoseconds.add(nanoseconds, ordering: .relaxed)
        }

        /// Work not tied to one item (a timed batch flush).
        public func busy(nanoseconds: Int) {
            busyNanoseconds.add(nanoseconds, ordering: .relaxed)
        }
    }

    public final class SourceFrameCounter: Sendable {
        let framesIn = Atomic<Int>(0)
        public func frameIn() { framesIn.add(1, ordering: .relaxed) }
    }

    private struct State {
        var nodeCounters: [String: NodeCounters] = [:]
        var sourceCounters: [String: SourceFrameCounter] = [:]
        var drops: [String: Int] = [:]
        var sinkDrops: [String: Int] = [:]
        var latency = LatencyHistogram()
        var recentLatency = LatencyHistogram()
        var latencyBySource: [String: LatencyHistogram] = [:]
        var delivered: [String: (seconds: Double, ended: Bool)] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// The counters for a node (shared by its lanes); fetch once, then update lock-free.
    public func counters(forNode node: String) -> NodeCounters {
        state.withLock { s in
            if let existing = s.nodeCounters[node] { return existing }
            let created = NodeCounters()
            s.nodeCounters[node] = created
            return created
        }
    }

    public func counters(forSource source: String) -> SourceFrameCounter {
        state.withLock { s in
            if let existing = s.sourceCounters[source] { return existing }
            let created = SourceFrameCounter()
            s.sourceCounters[source] = created
            return created
        }
    }

    public func nodeFailed(_ node: String) {
        counters(forNode: node).errors.add(1, ordering: .relaxed)
    }

    // Drops are counted per source node (a batch's files count under their node).
    public func dropped(source: String, count: Int = 1) {
        state.withLock { $0.drops[SourceName.root(source), default: 0] += count }
    }

    public func sinkDropped(source: String, count: Int = 1) {
        state.withLock { $0.sinkDrops[SourceName.root(source), default: 0] += count }
    }

    /// A sink wrote output of `source` up to media time `seconds` (progress reporting).
    public func delivered(source: String, seconds: Double) {
        state.withLock { s in
            if seconds > s.delivered[source]?.seconds ?? -.infinity { s.delivered[source, default: (0, false)].seconds = seconds }
        }
    }

    /// A sink saw `source`'s end-of-stream.
    public func delivered(endOf source: String) {
        state.withLock { $0.delivered[source, default: (0, false)].ended = true }
    }

    /// Per source: the latest media time a sink wrote, and whether the source has ended there.
    public func deliveredProgress() -> [String: (seconds: Double, ended: Bool)] {
        state.withLock { $0.delivered }
    }

    public func frameIn(source: String) {
        counters(forSource: source).frameIn()
    }

    /// A source that ended and was let go (a service's removed camera): its counters go.
    public func forget(source: String) {
        state.withLock { s in
            s.sourceCounters[source] = nil
            s.drops[source] = nil
            s.sinkDrops[source] = nil
            s.latencyBySource[source] = nil
            s.delivered[source] = nil
        }
    }

    /// A frame's record reached a sink `seconds` after the frame was ingested.
    public func latency(_ seconds: Double, source: String? = nil) {
        state.withLock { s in
            s.latency.record(seconds: seconds)
            s.recentLatency.record(seconds: seconds)
            if let source { s.latencyBySource[SourceName.root(source), default: LatencyHistogram()].record(seconds: seconds) }
        }
    }

    /// The latencies since the previous call (the heartbeat's window), starting a new window.
    public func takeRecentLatency() -> LatencyHistogram {
        state.withLock { s in
            defer { s.recentLatency = LatencyHistogram() }
            return s.recentLatency
        }
    }

    public func snapshot() -> Snapshot {
        state.withLock { s in
            let nodes = s.nodeCounters.mapValues { c in
                NodeStats(items: c.items.load(ordering: .relaxed),
                          busySeconds: Double(c.busyNanoseconds.load(ordering: .relaxed)) / 1e9,
                          errors: c.errors.load(ordering: .relaxed))
            }
            let framesIn = s.sourceCounters.mapValues { $0.framesIn.load(ordering: .relaxed) }
            return Snapshot(nodes: nodes, drops: s.drops, sinkDrops: s.sinkDrops, framesIn: framesIn, latency: s.latency,
                            latencyBySource: s.latencyBySource, recentLatency: s.recentLatency)
        }
    }

    /// Counters for one source, as status messages carry them.
    public func sourceCounters(_ source: String) -> SightlineCore.SourceCounters {
        state.withLock { s in
            SightlineCore.SourceCounters(framesIn: s.sourceCounters[source]?.framesIn.load(ordering: .relaxed) ?? 0,
                           droppedInGraph: s.drops[source] ?? 0, droppedAtSink: s.sinkDrops[source] ?? 0)
        }
    }
}
