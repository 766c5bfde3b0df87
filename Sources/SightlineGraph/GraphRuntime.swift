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
    /// Sources change while a service runs (`addSource`, `removeSource`): read under a lock.
    private let sourceList = Mutex<[SourceRunner]>([])
    var sources: [SourceRunner] { sourceList.withLock { $0 }.filter { !$0.isHidden } }
    private var allSources: [SourceRunner] { sourceList.withLock { $0 } }
    private let queueList = Mutex<[EdgeQueue]>([])
    private var queues: [EdgeQueue] { queueList.withLock { $0 } }
    private var lanesByNode: [String: [NodeRunner]] = [:]
    private let registry: NodeRegistry
    /// Sources started with `start()`; the rest (a service's templates) wait for a stop.
    private var startsFileSources = true
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

    /// Every edge queue's counters, for metrics.
    public func edgeStats() -> [EdgeStats] { queues.map(\.stats).filter { $0.from != Self.holdSourceID } }

    /// The source nodes of the pipeline file.
    public var fileSourceIDs: [String] { pipeline.nodes.filter { $0.descriptor.role == .source }.map(\.id) }

    /// Sources that ended with an error, and the error.
    public var failedSources: [String: String] { failures.withLock { $0 } }

    public init(pipeline: ValidatedPipeline, registry: NodeRegistry, clock: any GraphClock = SystemClock(), synchronous: Bool = false) throws {
        self.pipeline = pipeline
        self.registry = registry
        var sources: [SourceRunner] = []
        var queues: [EdgeQueue] = []
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
        self.lanesByNode = lanesByNode
        sourceList.withLock { $0 = sources }
        queueList.withLock { $0 = queues }
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
        for source in allSources { launch(source) }
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + 0.25, repeating: 0.25)
        timer.setEventHandler { [weak self] in self?.heartbeatIfDue() }
        timer.resume()
        heartbeatTimer = timer
    }

    private func launch(_ source: SourceRunner) {
        let thread = Thread { source.run() }
        thread.name = "sightline.source.\(source.nodeID)"
        thread.start()
    }

    // MARK: - Sources at run time (a service)

    /// Makes the runtime a service: the branch of `template` (a source node of the file) stays
    /// open with no source in it, so sources can come and go (`addSource`, `removeSource`)
    /// until `stop`. With `startFileSources` false the file's own sources do not run; they
    /// are templates only. Call before `start`.
    public func holdOpen(template: String, startFileSources: Bool) throws {
        guard fileSourceIDs.contains(template) else { throw SourceControlError.notATemplate(template, fileSourceIDs) }
        let hold = SourceRunner(nodeID: Self.holdSourceID, processor: WaitForStopSource(sourceID: Self.holdSourceID), hidden: true)
        hold.runtime = self
        connect(hold, like: template, running: false)
        if !startFileSources {
            sourceList.withLock { list in
                list = list.map { runner in
                    guard !runner.isHidden else { return runner }
                    let idle = SourceRunner(nodeID: runner.nodeID, processor: WaitForStopSource(sourceID: runner.nodeID), hidden: true)
                    idle.runtime = self
                    idle.outputs = runner.outputs
                    return idle
                }
            }
        }
        sourceList.withLock { $0.append(hold) }
    }

    /// The hidden source that holds a service's branch open.
    public static let holdSourceID = "_hold"

    /// End-of-streams of hidden sources pass through the graph without reaching processors:
    /// no subscriber hears of them.
    func isHidden(source: String) -> Bool {
        source == Self.holdSourceID || sourceList.withLock { $0.contains { $0.isHidden && $0.nodeID == source } }
    }

    /// Starts a new source shaped like `template`: its node type and options, with
    /// `overrides` (already checked by `sourceOptions`) on top, wired to the same edges.
    /// `beforeStart` runs once everything is checked, just before the source's thread starts
    /// (so whoever tracks its status is ready for its first event).
    public func addSource(id: String, template: String, options: NodeOptions, beforeStart: () -> Void = {}) throws {
        guard Self.isValidSourceID(id) else { throw SourceControlError.badID(id) }
        guard let node = pipeline.nodes.first(where: { $0.id == template && $0.descriptor.role == .source }) else {
            throw SourceControlError.notATemplate(template, fileSourceIDs)
        }
        pruneEndedSources()
        let taken = sourceList.withLock { list in list.contains { $0.nodeID == id && !$0.hasEnded } }
        if taken || pipeline.nodes.contains(where: { $0.id == id }) { throw SourceControlError.duplicate(id) }
        guard let factory = registry.factory(node.type), case .source(let processor) = try factory.make(id, options) else {
            throw SourceControlError.badID(id)
        }
        let runner = SourceRunner(nodeID: id, processor: processor)
        runner.runtime = self
        connect(runner, like: template, running: true)
        sourceList.withLock { list in
            list.removeAll { $0.nodeID == id }  // an earlier source of that name has ended
            list.append(runner)
        }
        beforeStart()
        launch(runner)
    }

    /// The options a new source of `template` runs with: the template's, with `overrides`
    /// (text, as on the command line) parsed and range-checked against the node type.
    public func sourceOptions(template: String, overrides: [String: String]) throws -> NodeOptions {
        guard let node = pipeline.nodes.first(where: { $0.id == template && $0.descriptor.role == .source }) else {
            throw SourceControlError.notATemplate(template, fileSourceIDs)
        }
        var values = node.options.values
        for (name, text) in overrides.sorted(by: { $0.key < $1.key }) {
            guard let spec = node.descriptor.option(name) else {
                throw SourceControlError.badOption(name, "\(node.type) has no such option (\(node.descriptor.options.map(\.name).joined(separator: ", ")))")
            }
            switch spec.parse(text) {
            case .success(let value): values[name] = value
            case .failure(let error): throw SourceControlError.badOption(name, "\(error)")
            }
        }
        return NodeOptions(values, outputDirectory: node.options.outputDirectory)
    }

    /// Stops a source started with `addSource` (or a file source): it ends like any source,
    /// with its end-of-stream published, and its decoder and thread go away.
    public func removeSource(id: String) throws {
        guard let runner = sourceList.withLock({ $0.first { $0.nodeID == id && !$0.isHidden } }), !runner.hasEnded else {
            throw SourceControlError.unknown(id)
        }
        runner.processor.cancel()
        // A source stuck where the cancel cannot reach is ended without it.
        DispatchQueue.global().asyncAfter(deadline: .now() + 1) { runner.abandon() }
    }

    /// Sources added at run time that have ended, and whose queues have drained, are let go:
    /// their queues leave the nodes they fed (changed on each node's own queue) and the list.
    /// A service whose cameras come and go keeps only what its live sources need.
    public func pruneEndedSources() {
        let fileSources = Set(fileSourceIDs)
        let done = sourceList.withLock { list in
            list.filter { !$0.isHidden && !fileSources.contains($0.nodeID) && $0.hasEnded }
        }
        for source in done {
            let lanes = source.outputs.flatMap(\.lanes)
            guard lanes.allSatisfy(\.isEmpty) else { continue }
            for lane in lanes {
                guard let consumer = lane.consumer else { continue }
                let drop = { consumer.inputs.removeAll { $0 === lane } }
                if executor.isSynchronous { drop() } else { consumer.queue.sync(execute: drop) }
            }
            let gone = Set(lanes.map(ObjectIdentifier.init))
            queueList.withLock { $0.removeAll { gone.contains(ObjectIdentifier($0)) } }
            sourceList.withLock { $0.removeAll { $0 === source } }
            metrics.forget(source: source.nodeID)
        }
    }

    /// Whether a source (added or from the file) is still running.
    public func isRunning(source id: String) -> Bool {
        sourceList.withLock { $0.contains { $0.nodeID == id && !$0.isHidden && !$0.hasEnded } }
    }

    static func isValidSourceID(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 64 && !id.hasPrefix("_")
            && id.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_.".unicodeScalars.contains($0) }
    }

    /// Wires `source` to the edges `template` has, and makes every node that waits for the
    /// template's end-of-stream wait for this source's too. While the graph runs, each
    /// runner's lists change on that runner's own queue, never under a drain.
    private func connect(_ source: SourceRunner, like template: String, running: Bool) {
        func onRunner(_ runner: NodeRunner, _ change: @escaping () -> Void) {
            if running && !executor.isSynchronous { runner.queue.sync(execute: change) } else { change() }
        }
        for edge in pipeline.edges where edge.from == template {
            guard let targets = lanesByNode[edge.to] else { continue }
            var lanes: [EdgeQueue] = []
            for target in targets {
                let queue = EdgeQueue(from: source.nodeID, to: target.label, policy: edge.policy, capacity: edge.capacity, metrics: metrics)
                queue.consumer = target
                onRunner(target) { target.inputs.append(queue) }
                lanes.append(queue)
                queueList.withLock { $0.append(queue) }
            }
            source.outputs.append(OutputPort(lanes: lanes))
        }
        for runner in runners {
            onRunner(runner) { runner.expectSource(source.nodeID, like: template) }
        }
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
        let sources = allSources
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
    /// The observer hears it too (the sinks publish their own end-of-stream message when it
    /// reaches them; a service's source list needs it now).
    func sourceEnding(_ id: String, _ eos: EndOfStream, hidden: Bool) {
        ended.withLock { _ = $0.insert(id) }
        if !hidden { statusObserver?(StatusEvent(.endOfStream(eos, metrics.sourceCounters(id)), sourceID: id, wallClock: clock.now())) }
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
        let sources = self.sources
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
        // Percentiles of the heartbeat's own window: a service running for months reports now,
        // not its average since it started.
        let recent = metrics.takeRecentLatency()
        return Heartbeat(uptime: uptime, queued: queues.reduce(0) { $0 + $1.count }, latencyP50: recent.percentile(50),
                         latencyP99: recent.percentile(99), sources: sources, nodes: nodes)
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
