import Dispatch
import Foundation
import SightlineCore
import Synchronization

/// Runs one node (or one lane of a concurrent node): drains its input queues in turn,
/// calls the processor, routes its output, and handles end-of-stream for each source: a
/// source has ended here once every input edge that can carry it delivered its end-of-stream.
final class NodeRunner: @unchecked Sendable {
    let nodeID: String
    let label: String
    let role: NodeDescriptor.Role
    let processor: NodeProcessor
    let queue: DispatchQueue
    var inputs: [EdgeQueue] = []
    var statusInbox: EdgeQueue?
    var outputs: [OutputPort] = []
    var expectedEndOfStream: [String: Int] = [:]
    unowned(unsafe) var runtime: GraphRuntime! {
        didSet { counters = runtime.metrics.counters(forNode: nodeID) }
    }
    private var counters: GraphMetrics.NodeCounters?

    private var receivedEndOfStream: [String: Int] = [:]
    private var endOfStreams: [String: EndOfStream] = [:]
    private var finishedSources = Set<String>()
    private(set) var isClosed = false
    private var nextInput = 0
    private let scheduleLock = NSLock()
    private var scheduled = false
    private var lastErrorPost = -Double.infinity
    /// The flush deadline a timer is already armed for (Dispatch executor only).
    private var armedDeadline: Double?

    init(nodeID: String, label: String, role: NodeDescriptor.Role, processor: NodeProcessor) {
        self.nodeID = nodeID
        self.label = label
        self.role = role
        self.processor = processor
        self.queue = DispatchQueue(label: "sightline.node.\(label)")
    }

    /// True when the caller should schedule a drain (it was not already scheduled).
    func markScheduled() -> Bool {
        scheduleLock.lock()
        defer { scheduleLock.unlock() }
        if scheduled { return false }
        scheduled = true
        return true
    }

    /// Downstream runners to wake at the end of the current batch (touched only by this
    /// runner's own drain, which is serial).
    private var deferredWakes: [NodeRunner] = []

    func deferWake(_ runner: NodeRunner) {
        if !deferredWakes.contains(where: { $0 === runner }) { deferredWakes.append(runner) }
    }

    private func wakeDeferred() {
        for runner in deferredWakes { runtime.executor.schedule(runner) }
        deferredWakes.removeAll(keepingCapacity: true)
    }

    func drain() {
        // Batches of at most 32 items or 1 ms, so downstream latency stays bounded.
        var batch = 0
        var batchStart = DispatchTime.now().uptimeNanoseconds
        while processOne() {
            batch += 1
            if batch >= 32 || DispatchTime.now().uptimeNanoseconds - batchStart > 1_000_000 {
                wakeDeferred()
                batch = 0
                batchStart = DispatchTime.now().uptimeNanoseconds
            }
        }
        wakeDeferred()
        scheduleLock.lock()
        scheduled = false
        scheduleLock.unlock()
        // An item may have arrived between the last empty pop and clearing the flag.
        if hasInput { runtime.executor.schedule(self) }
    }

    var hasInput: Bool {
        if let statusInbox, !statusInbox.isEmpty { return true }
        return inputs.contains { !$0.isEmpty }
    }

    /// Processes one queued item; false when every input is empty.
    @discardableResult
    func processOne() -> Bool {
        if let statusInbox, let item = statusInbox.pop() {
            handle(item)
            return true
        }
        for offset in 0..<inputs.count {
            let index = (nextInput + offset) % inputs.count
            if let item = inputs[index].pop() {
                nextInput = (index + 1) % inputs.count
                handle(item)
                return true
            }
        }
        return false
    }

    /// A source added while running, shaped like `template`: wait for its end-of-stream as
    /// for the template's (called on this runner's queue).
    func expectSource(_ source: String, like template: String) {
        guard let count = expectedEndOfStream[template] else { return }
        expectedEndOfStream[source] = count
        finishedSources.remove(source)
        receivedEndOfStream[source] = nil
        endOfStreams[source] = nil
    }

    private func handle(_ item: Item) {
        guard !isClosed else { return }
        switch item {
        case .endOfStream(let eos):
            let source = eos.sourceID
            receivedEndOfStream[source, default: 0] += 1
            endOfStreams[source] = endOfStreams[source].map { $0.merging(eos) } ?? eos
            // A file of a batch source (`NODE/FILE`) travels the same edges as its node.
            let expected = expectedEndOfStream[source] ?? expectedEndOfStream[SourceName.root(source)] ?? 1
            guard receivedEndOfStream[source] == expected else { return }
            let merged = endOfStreams[source] ?? eos
            receivedEndOfStream[source] = nil
            endOfStreams[source] = nil
            if !runtime.isHidden(source: source) { call(.endOfStream(merged)) }
            for port in outputs { _ = port.push(.endOfStream(merged), executor: runtime.executor, waker: self) }
            guard expectedEndOfStream[source] != nil else { return }
            finishedSources.insert(source)
            if finishedSources.isSuperset(of: expectedEndOfStream.keys) { close() }
        case .status:
            if role == .sink { call(item) }
        case .frame, .record:
            call(item)
        }
    }

    /// Sends what the processor emits to every output edge.
    private func route(_ output: Item) {
        if case .endOfStream = output { return }  // the scheduler owns end-of-stream
        for port in outputs { _ = port.push(output, executor: runtime.executor, waker: self) }
    }

    private func call(_ item: Item) {
        let started = DispatchTime.now().uptimeNanoseconds
        do {
            try processor.process(item, context: runtime, emit: route)
        } catch {
            runtime.metrics.nodeFailed(nodeID)
            postError(error, source: item.sourceID)
        }
        counters?.processed(nanoseconds: Int(DispatchTime.now().uptimeNanoseconds - started))
        armFlushTimer()
    }

    /// A node holding items back (dynamic batching) gets `flush` at its deadline even when no
    /// further item arrives. The timer runs on this runner's serial queue, so it never overlaps
    /// a drain; the harness fires due flushes itself when it moves its clock.
    private func armFlushTimer() {
        guard !runtime.executor.isSynchronous, let deadline = processor.flushDeadline else { return }
        if let armed = armedDeadline, armed <= deadline { return }
        armedDeadline = deadline
        let delay = max(0, deadline - runtime.clock.now())
        queue.asyncAfter(deadline: .now() + delay) { [self] in
            armedDeadline = nil
            flushIfDue()
            wakeDeferred()
        }
    }

    /// Calls the processor's `flush` when its deadline has passed on the runtime's clock.
    func flushIfDue() {
        guard !isClosed, let deadline = processor.flushDeadline else { return }
        guard runtime.clock.now() >= deadline else {
            armFlushTimer()
            return
        }
        let started = DispatchTime.now().uptimeNanoseconds
        do {
            try processor.flush(context: runtime, emit: route)
        } catch {
            runtime.metrics.nodeFailed(nodeID)
            postError(error, source: nil)
        }
        counters?.busy(nanoseconds: Int(DispatchTime.now().uptimeNanoseconds - started))
        armFlushTimer()
    }

    private func close() {
        do {
            try processor.close(context: runtime)
        } catch {
            postError(error, source: nil)
        }
        isClosed = true
        runtime.runnerClosed(self)
    }

    /// Errors go to the status topic, at most one per node per second (the rest are counted).
    private func postError(_ error: Error, source: String?) {
        let now = runtime.clock.now()
        guard now - lastErrorPost >= 1 else { return }
        lastErrorPost = now
        runtime.post(StatusEvent(.error(NodeFailure(node: nodeID, message: "\(error)", errorsSoFar: runtime.metrics.snapshot().nodes[nodeID]?.errors ?? 0)),
                                 sourceID: source, wallClock: now))
    }
}

/// Runs a source node's loop on its own thread and ends its branch with end-of-stream,
/// whatever happens: a failing source never stops the others.
///
/// A source can be stuck where cancelling cannot reach it: FFmpeg blocked in open(2) or
/// read(2) on a FIFO or a dead network file system, where no interrupt callback runs. On a
/// stop the runtime then abandons it (`abandon`): the branch gets its end-of-stream now, and
/// whatever the stuck thread does later is ignored; the process exits without waiting for it.
final class SourceRunner: @unchecked Sendable {
    let nodeID: String
    let processor: SourceProcessor
    var outputs: [OutputPort] = []
    unowned(unsafe) var runtime: GraphRuntime!

    /// Not a real source: it holds a service's branch open, or stands in for a template.
    let isHidden: Bool

    private struct State {
        var ended = false
        /// Inside a push: the thread is alive and moving, not stuck in a read.
        var pushing = false
    }
    private let state = Mutex(State())

    init(nodeID: String, processor: SourceProcessor, hidden: Bool = false) {
        self.nodeID = nodeID
        self.processor = processor
        self.isHidden = hidden
    }

    var hasEnded: Bool { state.withLock { $0.ended } }

    func run() {
        let runtime = self.runtime!
        let outputs = self.outputs
        let frameCounter = runtime.metrics.counters(forSource: processor.sourceID)
        var eos: EndOfStream
        do {
            let ownID = processor.sourceID
            eos = try processor.run(context: runtime) { item in
                // The runner sends the source's own end-of-stream; a batch source ends each of
                // its files (`NODE/FILE`) itself.
                if case .endOfStream(let e) = item, e.sourceID == ownID { return .ok }
                let abandoned = state.withLock { state -> Bool in
                    if state.ended { return true }
                    state.pushing = true
                    return false
                }
                if abandoned { return .flushing }
                defer { state.withLock { $0.pushing = false } }
                if case .frame = item { frameCounter.frameIn() }
                var result = FlowResult.ok
                for port in outputs {
                    switch port.push(item, executor: runtime.executor) {
                    case .flushing: result = .flushing
                    case .dropped: if result == .ok { result = .dropped }
                    case .ok: break
                    }
                }
                return result
            }
        } catch {
            if !hasEnded {
                runtime.post(StatusEvent(.error(NodeFailure(node: nodeID, message: "\(error)", fatal: true)), sourceID: processor.sourceID,
                                         wallClock: runtime.clock.now()))
            }
            eos = EndOfStream(sourceID: processor.sourceID, error: "\(error)")
        }
        end(with: eos)
    }

    /// Ends the branch once: by the source's own thread, or by `abandon`.
    private func end(with eos: EndOfStream) {
        let first = state.withLock { state -> Bool in
            defer { state.ended = true }
            return !state.ended
        }
        guard first else { return }
        runtime.sourceEnding(processor.sourceID, eos, hidden: isHidden)
        for port in outputs { _ = port.push(.endOfStream(eos), executor: runtime.executor) }
    }

    /// Ends a source whose thread did not return after it was cancelled. Returns false when it
    /// had ended, or is pushing (alive, so the queues' flushing will reach it).
    @discardableResult
    func abandon() -> Bool {
        let stuck = state.withLock { !$0.ended && !$0.pushing }
        guard stuck else { return false }
        if isHidden {
            end(with: EndOfStream(sourceID: processor.sourceID, frames: 0))
            return true
        }
        let message = "stopped while its input was blocked (no data and no answer to the stop)"
        runtime.post(StatusEvent(.error(NodeFailure(node: nodeID, message: message, fatal: true)), sourceID: processor.sourceID,
                                 wallClock: runtime.clock.now()))
        end(with: EndOfStream(sourceID: processor.sourceID, error: message))
        return true
    }
}

/// A source that emits nothing and ends when stopped: what holds a service's branch open.
final class WaitForStopSource: SourceProcessor, @unchecked Sendable {
    let sourceID: String
    private let stopped = DispatchSemaphore(value: 0)

    init(sourceID: String) { self.sourceID = sourceID }

    func cancel() { stopped.signal() }

    func run(context: any NodeContext, emit: (Item) -> FlowResult) throws -> EndOfStream {
        stopped.wait()
        return EndOfStream(sourceID: sourceID, frames: 0)
    }
}

/// What the source-control API refuses, in words for its caller.
public enum SourceControlError: UserFacingError, Equatable {
    case badID(String)
    case duplicate(String)
    case unknown(String)
    case notATemplate(String, [String])
    case badOption(String, String)
    case badURL(String, String)

    public var message: String {
        switch self {
        case .badID(let id): "bad source id '\(id)': use 1–64 letters, digits, '-', '_' or '.', not starting with '_'"
        case .duplicate(let id): "a source named '\(id)' is already running (or is a node of the pipeline)"
        case .unknown(let id): "no running source named '\(id)'"
        case .notATemplate(let id, let sources): "'\(id)' is not a source node of the pipeline (its sources: \(sources.joined(separator: ", ")))"
        case .badOption(let name, let why): "option '\(name)': \(why)"
        case .badURL(let url, let why): "cannot use '\(url)': \(why)"
        }
    }
}
