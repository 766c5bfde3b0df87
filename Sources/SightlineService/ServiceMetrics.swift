import CoreMetrics
import Foundation
import Prometheus
import SightlineCore
import SightlineGraph
import Synchronization

/// `/metrics`: the graph's own counters (kept lock-free on the hot path by `GraphMetrics` and
/// the edge queues) mirrored into swift-metrics objects at scrape time and rendered by
/// swift-prometheus. Mirroring at scrape time keeps the per-item cost what it was: nothing is
/// added to a node's work, which `bench scheduler` holds under 20 µs.
public final class ServiceMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let mirrors = Mutex(Mirrors())

    public init() {
        factory = PrometheusMetricsFactory(registry: registry)
    }

    /// The Prometheus text exposition of everything below, read now.
    public func render(runtime: GraphRuntime, sources: [SourceStatusBoard.Entry]) -> String {
        let snapshot = runtime.metrics.snapshot()
        let edges = runtime.edgeStats()
        mirrors.withLock { m in
            for (node, stats) in snapshot.nodes {
                let labels = [("node", node)]
                m.count("sightline_node_items_total", labels, stats.items, factory)
                m.countSeconds("sightline_node_busy_seconds_total", labels, stats.busySeconds, factory)
                m.count("sightline_node_errors_total", labels, stats.errors, factory)
            }
            // One series per edge (lanes of a concurrent node summed).
            var byEdge: [String: (from: String, to: String, stats: EdgeStats)] = [:]
            for edge in edges {
                let key = edge.from + "\u{1}" + edge.toNode
                if var total = byEdge[key] {
                    total.stats.depth += edge.depth
                    total.stats.frames += edge.frames
                    total.stats.records += edge.records
                    total.stats.dropped += edge.dropped
                    byEdge[key] = total
                } else {
                    byEdge[key] = (edge.from, edge.toNode, edge)
                }
            }
            for (_, edge) in byEdge {
                let labels = [("from", edge.from), ("to", edge.to)]
                m.count("sightline_edge_frames_total", labels, edge.stats.frames, factory)
                m.count("sightline_edge_records_total", labels, edge.stats.records, factory)
                m.count("sightline_edge_dropped_total", labels, edge.stats.dropped, factory)
                m.gauge("sightline_edge_queue_depth", labels, Double(edge.stats.depth), factory)
            }
            for source in sources {
                let labels = [("source", source.id)]
                m.count("sightline_source_frames_in_total", labels, snapshot.framesIn[source.id] ?? source.framesIn, factory)
                m.gauge("sightline_source_decode_fps", labels, source.fps, factory)
                m.count("sightline_source_reconnects_total", labels, source.reconnects, factory)
                m.gauge("sightline_source_gap_seconds", labels, source.gapSeconds, factory)
                m.gauge("sightline_source_connected", labels, source.state == .connected ? 1 : 0, factory)
                m.count("sightline_source_dropped_in_graph_total", labels, snapshot.drops[source.id] ?? 0, factory)
                m.count("sightline_source_dropped_at_sink_total", labels, snapshot.sinkDrops[source.id] ?? 0, factory)
                if let latency = snapshot.latencyBySource[source.id] {
                    m.latency("sightline_source_latency_seconds", labels, latency, factory)
                }
            }
            m.latency("sightline_latency_seconds", [], snapshot.latency, factory)
            // Series of sources that are gone (removed and no longer listed, queues released)
            // end with them: a service whose cameras churn does not grow without bound.
            var present = Set(sources.map(\.id))
            for edge in edges { present.insert(edge.from) }
            for node in snapshot.nodes.keys { present.insert(node) }
            m.expire { labels in labels.allSatisfy { ($0.0 != "source" && $0.0 != "from") || present.contains($0.1) } }
            if let resident = ProcessMemory.residentBytes() {
                m.gauge("sightline_process_resident_memory_bytes", [], Double(resident), factory)
            }
        }
        return registry.emitToString()
    }

    /// The metric objects, and what each counter last showed (counters only go up: the
    /// difference is added).
    private struct Mirrors {
        var counters: [String: (counter: CoreMetrics.Counter, last: Int)] = [:]
        var secondCounters: [String: (counter: CoreMetrics.FloatingPointCounter, last: Double)] = [:]
        var gauges: [String: CoreMetrics.Gauge] = [:]
        var labelsByKey: [String: [(String, String)]] = [:]

        /// Destroys (unregisters) every metric whose labels `keep` refuses.
        mutating func expire(keep: ([(String, String)]) -> Bool) {
            for (key, labels) in labelsByKey where !keep(labels) {
                counters.removeValue(forKey: key)?.counter.destroy()
                secondCounters.removeValue(forKey: key)?.counter.destroy()
                gauges.removeValue(forKey: key)?.destroy()
                labelsByKey[key] = nil
            }
        }

        static func key(_ label: String, _ dimensions: [(String, String)]) -> String {
            ([label] + dimensions.map { "\($0.0)=\($0.1)" }).joined(separator: "\u{1}")
        }

        mutating func remember(_ key: String, _ dimensions: [(String, String)]) {
            if labelsByKey[key] == nil { labelsByKey[key] = dimensions }
        }

        /// A counter shows `value` (a running total read from the graph): add what it gained
        /// since the last scrape (counters only go up).
        private static func mirror<Metric, Value: Comparable & AdditiveArithmetic>(
            _ table: inout [String: (counter: Metric, last: Value)], _ labels: inout [String: [(String, String)]],
            _ label: String, _ dimensions: [(String, String)], _ value: Value,
            make: () -> Metric, add: (Metric, Value) -> Void
        ) {
            let key = key(label, dimensions)
            if labels[key] == nil { labels[key] = dimensions }
            let entry = table[key] ?? (make(), .zero)
            if value > entry.last { add(entry.counter, value - entry.last) }
            table[key] = (entry.counter, max(value, entry.last))
        }

        mutating func count(_ label: String, _ dimensions: [(String, String)], _ value: Int, _ factory: PrometheusMetricsFactory) {
            Self.mirror(&counters, &labelsByKey, label, dimensions, value, make: { CoreMetrics.Counter(label: label, dimensions: dimensions, factory: factory) },
                   add: { $0.increment(by: $1) })
        }

        mutating func countSeconds(_ label: String, _ dimensions: [(String, String)], _ value: Double, _ factory: PrometheusMetricsFactory) {
            Self.mirror(&secondCounters, &labelsByKey, label, dimensions, value, make: { CoreMetrics.FloatingPointCounter(label: label, dimensions: dimensions, factory: factory) },
                   add: { $0.increment(by: $1) })
        }

        mutating func gauge(_ label: String, _ dimensions: [(String, String)], _ value: Double, _ factory: PrometheusMetricsFactory) {
            let key = Self.key(label, dimensions)
            remember(key, dimensions)
            let gauge = gauges[key] ?? CoreMetrics.Gauge(label: label, dimensions: dimensions, factory: factory)
            gauges[key] = gauge
            gauge.record(value)
        }

        /// Quantiles from the HdrHistogram as gauges with a `quantile` label (the summary
        /// form), plus the sample count.
        mutating func latency(_ label: String, _ dimensions: [(String, String)], _ histogram: GraphMetrics.LatencyHistogram,
                              _ factory: PrometheusMetricsFactory) {
            for quantile in [0.5, 0.9, 0.99] {
                if let value = histogram.percentile(quantile * 100) {
                    gauge(label, dimensions + [("quantile", String(quantile))], value, factory)
                }
            }
            count(label + "_count", dimensions, Int(histogram.count), factory)
        }
    }
}

/// The process's resident memory, from /proc (Linux).
enum ProcessMemory {
    static func residentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
