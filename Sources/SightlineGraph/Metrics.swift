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
        /// Ingest-to-publish latency samples (seconds), most recent last.
        public var latencies: [Double]

        public func latencyPercentile(_ p: Double) -> Double? {
            guard !latencies.isEmpty else { return nil }
            let sorted = latencies.sorted()
            let index = min(sorted.count - 1, max(0, Int((p / 100 * Double(sorted.count - 1)).rounded())))
            return sorted[index]
        }
    }

    private struct State {
        var nodes: [String: NodeStats] = [:]
        var drops: [String: Int] = [:]
        var sinkDrops: [String: Int] = [:]
        var framesIn: [String: Int] = [:]
        var latencies: [Double] = []
        var latencyCursor = 0
    }

    private let state = Mutex(State())
    private static let latencyWindow = 2048

    public init() {}

    public func nodeProcessed(_ node: String, seconds: Double) {
        state.withLock {
            $0.nodes[node, default: NodeStats()].items += 1
            $0.nodes[node, default: NodeStats()].busySeconds += seconds
        }
    }

    public func nodeFailed(_ node: String) {
        state.withLock { $0.nodes[node, default: NodeStats()].errors += 1 }
    }

    public func dropped(source: String, count: Int = 1) {
        state.withLock { $0.drops[source, default: 0] += count }
    }

    public func sinkDropped(source: String, count: Int = 1) {
        state.withLock { $0.sinkDrops[source, default: 0] += count }
    }

    public func frameIn(source: String) {
        state.withLock { $0.framesIn[source, default: 0] += 1 }
    }

    public func latency(_ seconds: Double) {
        state.withLock { s in
            if s.latencies.count < Self.latencyWindow {
                s.latencies.append(seconds)
            } else {
                s.latencies[s.latencyCursor] = seconds
                s.latencyCursor = (s.latencyCursor + 1) % Self.latencyWindow
            }
        }
    }

    public func snapshot() -> Snapshot {
        state.withLock { s in
            Snapshot(nodes: s.nodes, drops: s.drops, sinkDrops: s.sinkDrops, framesIn: s.framesIn, latencies: s.latencies)
        }
    }

    /// Counters for one source, as status messages carry them.
    public func sourceFields(_ source: String) -> [String: JSONValue] {
        state.withLock { s in
            [
                "frames_in": .int(Int64(s.framesIn[source] ?? 0)),
                "dropped_in_graph": .int(Int64(s.drops[source] ?? 0)),
                "dropped_at_sink": .int(Int64(s.sinkDrops[source] ?? 0)),
            ]
        }
    }
}
