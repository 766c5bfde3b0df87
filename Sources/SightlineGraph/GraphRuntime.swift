import Dispatch
import Foundation
import SightlineCore
import Synchronization

/// A validated pipeline wired into runners and queues, ready to run on Dispatch (or, in the
/// harness, on one thread).
public final class GraphRuntime: NodeContext, @unchecked Sendable {
    public let pipeline: ValidatedPipeline
    private let resultsDigest: String
    public let clock: any GraphClock
    public let metrics = GraphMetrics()
    public var pipelineName: String { pipeline.name }
    public var pipelineHash: String { pipeline.hash }
    public var resultsHash: String { resultsDigest }

    let executor: Executor
    private(set) var runners: [NodeRunner] = []
    private(set) var sources: [SourceRunner] = []
    private var queues: [EdgeQueue] = []
    private let finished = DispatchSemaphore(value: 0)
    private let closedCount = Mutex(0)
    private var heartbeatTimer: DispatchSourceTimer?
    private let heartbeatState: Mutex<HeartbeatSchedule>
    private let startedAt: Double
    private let reportedDrops = Mutex<[String: Int]>([:])
    private let failures = Mutex<[String: String]>([:])
    /// Sources whose end-of-stream has been sent: no status about them may follow it.
    private let ended = Mutex<Set<String>>([])
    /// Called (on any thread) for every status event, e.g. to echo trouble on a terminal.
    public var statusObserver: (@Sendable (StatusEvent) -> Void)?

    public var sourceIDs: [String] { sources.map(\.nodeID) }

    /// Sources that ended with an error, and the error.
    public var failedSources: [String: String] { failures.withLock { $0 } }

    public init(pipeline: ValidatedPipeline, registry: NodeRegistry, clock: any GraphClock = SystemClock(), synchronous: Bool = false) throws {
        self.pipeline = pipeline
        resultsDigest = pipeline.resultsHash
        self.clock = clock
        self.executor = synchronous ? SynchronousExecutor() : DispatchExecutor()
        self.startedAt = clock.now()
        self.heartbeatState = Mutex(HeartbeatSchedule(interval: pipeline.spec.heartbeat, start: clock.now()))

        var lanesByNode: [String: [NodeRunner]] = [:]
        var sourceByNode: [String: SourceRunner] = [:]
        for node in pipeline.nodes {
            guard let factory = registry.factory(node.type) else { continue }
            if node.descriptor.role == .source {
                guard case .source(let processor) = try factory.make(node.id, node.options) else {
                    throw Diagnostic(pipeline.spec.node(node.id)?.location ?? pipeline.spec.nodesLocation, "node type '\(node.type)' did not make a source")
                }
                let runner = SourceRunner(nodeID: node.id, processor: processor)
                sourceByNode[node.id] = runner
                sources.append(runner)
            } else {
                for lane in 0..<node.concurrency {
                    guard case .processor(let processor) = try factory.make(node.id, node.options) else {
                        throw Diagnostic(pipeline.spec.node(node.id)?.location ?? pipeline.spec.nodesLocation, "node type '\(node.type)' did not make a processor")
                    }
                    let label = node.concurrency > 1 ? "\(node.id)#\(lane)" : node.id
                    let runner = NodeRunner(nodeID: node.id, label: label, role: node.descriptor.role, processor: processor)
                    lanesByNode[node.id, default: []].append(runner)
                    runners.append(runner)
                }
            }
        }

        let reaching = Self.sourcesReaching(pipeline)
        for edge in pipeline.edges {
            guard let targets = lanesByNode[edge.to] else { continue }
            let producers: Int = sourceByNode[edge.from] != nil ? 1 : (lanesByNode[edge.from]?.count ?? 0)
            let carried = sourceByNode[edge.from] != nil ? [edge.from] : Array(reaching[edge.from] ?? [])
            for producer in 0..<producers {
                var lanes: [EdgeQueue] = []
                for target in targets {
                    let queue = EdgeQueue(from: edge.from, to: target.label, policy: edge.policy, capacity: edge.capacity, metrics: metrics)
                    queue.consumer = target
                    target.inputs.append(queue)
                    for source in carried { target.expectedEndOfStream[source, default: 0] += 1 }
                    lanes.append(queue)
                    queues.append(queue)
                }
                let port = OutputPort(lanes: lanes)
                if let source = sourceByNode[edge.from] {
                    source.outputs.append(port)
                } else if let producerRunner = lanesByNode[edge.from]?[producer] {
                    producerRunner.outputs.append(port)
                }
            }
        }
        for runner in runners {
            runner.runtime = self
            if runner.role == .sink {
                let inbox = EdgeQueue(from: "status", to: runner.label, policy: .block, capacity: Int.max, metrics: metrics)
                inbox.consumer = runner
                runner.statusInbox = inbox
            }
        }
        for source in sources { source.runtime = self }
    }

    /// For each node, the ids of the sources whose items can reach it.
    static func sourcesReaching(_ pipeline: ValidatedPipeline) -> [String: Set<String>] {
        var result: [String: Set<String>] = [:]
        for source in pipeline.nodes where source.descriptor.role == .source {
            var stack = [source.id]
            var seen: Set<String> = [source.id]
            while let node = stack.popLast() {
                for edge in pipeline.edges where edge.from == node && seen.insert(edge.to).inserted {
                    result[edge.to, default: []].insert(source.id)
                    stack.append(edge.to)
                }
            }
        }
        return result
    }

    // MARK: - Running

    /// Starts every source on its own thread and the heartbeat timer.
    public func start() {
        for source in sources {
            let thread = Thread { source.run() }
            thread.name = "sightline.source.\(source.nodeID)"
            thread.start()
        }
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + 0.25, repeating: 0.25)
        timer.setEventHandler { [weak self] in self?.heartbeatIfDue() }
        timer.resume()
        heartbeatTimer = timer
    }

    /// Waits until every node has closed (all sources ended and drained).
    public func wait(timeout: Double? = nil) -> Bool {
        let done: Bool
        if let timeout {
            done = finished.wait(timeout: .now() + timeout) == .success
        } else {
            finished.wait()
            done = true
        }
        if done {
            finished.signal()  // stay signalled for later waits
            heartbeatTimer?.cancel()
        }
        return done
    }

    /// SIGINT/SIGTERM: sources stop and the queues drain. If that takes longer than
    /// `drainTimeout`, queued frames are discarded (counted) so records, status and
    /// end-of-stream still reach the sinks quickly.
    public func stop(drainTimeout: Double) -> Bool {
        for source in sources { source.processor.cancel() }
        // A source that has not returned after a second is stuck where cancelling cannot
        // reach (FFmpeg in a blocking open or read): end its branch without it.
        let deadline = Date().addingTimeInterval(min(1, drainTimeout))
        while Date() < deadline, sources.contains(where: { !$0.hasEnded }) { Thread.sleep(forTimeInterval: 0.02) }
        for source in sources where !source.hasEnded { source.abandon() }
        if wait(timeout: drainTimeout) { return true }
        for queue in queues { queue.beginFlushing() }
        return wait(timeout: 5)
    }

    public func post(_ status: StatusEvent) {
        if case .error(let failure) = status.detail, failure.fatal, let source = status.sourceID {
            failures.withLock { $0[source] = failure.message }
        }
        statusObserver?(status)
        for runner in runners where runner.role == .sink {
            _ = runner.statusInbox?.push(.status(status), executor: executor)
        }
    }

    /// A source is about to send its end-of-stream (its final counters travel with it).
    func sourceEnding(_ id: String) {
        ended.withLock { _ = $0.insert(id) }
    }

    func runnerClosed(_ runner: NodeRunner) {
        let all = closedCount.withLock { count -> Bool in
            count += 1
            return count == runners.count
        }
        if all { finished.signal() }
    }

    // MARK: - Heartbeat

    /// Posts a heartbeat when one is due on the runtime's clock.
    public func heartbeatIfDue() {
        let now = clock.now()
        guard heartbeatState.withLock({ $0.isDue(now: now) }) else { return }
        post(StatusEvent(.heartbeat(heartbeat(now: now)), sourceID: nil, wallClock: now))
        // Drops get their own status message per source whenever the count moved.
        let drops = metrics.snapshot()
        let endedSources = ended.withLock { $0 }
        for source in sources where !endedSources.contains(source.nodeID) {
            let total = (drops.drops[source.nodeID] ?? 0) + (drops.sinkDrops[source.nodeID] ?? 0)
            let changed = reportedDrops.withLock { reported -> Bool in
                defer { reported[source.nodeID] = total }
                return reported[source.nodeID, default: 0] != total
            }
            if changed {
                post(StatusEvent(.drops(metrics.sourceCounters(source.nodeID)), sourceID: source.nodeID, wallClock: now))
            }
        }
    }

    func heartbeat(now: Double) -> Heartbeat {
        let snapshot = metrics.snapshot()
        let uptime = max(now - startedAt, 1e-9)
        var sources: [String: Heartbeat.SourceRate] = [:]
        for source in self.sources {
            let frames = snapshot.framesIn[source.nodeID] ?? 0
            sources[source.nodeID] = .init(framesIn: frames, fps: Double(frames) / uptime, droppedInGraph: snapshot.drops[source.nodeID] ?? 0,
                                           droppedAtSink: snapshot.sinkDrops[source.nodeID] ?? 0)
        }
        let nodes = snapshot.nodes.mapValues { stats in
            Heartbeat.NodeCost(items: stats.items, errors: stats.errors, busySecondsPerItem: stats.items > 0 ? stats.busySeconds / Double(stats.items) : 0)
        }
        return Heartbeat(uptime: uptime, queued: queues.reduce(0) { $0 + $1.count }, latencyP50: snapshot.latencyPercentile(50),
                         latencyP99: snapshot.latencyPercentile(99), sources: sources, nodes: nodes)
    }
}

/// When heartbeats are due: a pure schedule on the runtime's clock.
struct HeartbeatSchedule {
    let interval: Double
    var next: Double

    init(interval: Double, start: Double) {
        self.interval = interval
        self.next = start + interval
    }

    mutating func isDue(now: Double) -> Bool {
        guard now >= next else { return false }
        // After a stall, one heartbeat, not a burst of missed ones.
        while next <= now { next += interval }
        return true
    }
}
