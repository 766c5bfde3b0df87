import Foundation
import SightlineNATS
import Synchronization

/// Pulls items of one pipeline from the work queue and processes them one at a time:
/// in-progress acks while it works, an ack once the item's folder is committed, a delayed
/// retry after a failure, and the dead-letter subject after the last delivery.
public final class Worker: @unchecked Sendable {
    public struct Settings: Sendable {
        public var id: String
        public var pipelineHash: String
        public var output: URL
        /// Seconds the server waits for an ack or in-progress before redelivering.
        public var ackWait: Double = 30
        public var policy = DeliveryPolicy()
        /// How long one pull waits for an item.
        public var pullTimeout: Double = 2
        public var heartbeat: Double = 5
        /// Exit once the queue has been empty for this long (nil: run until stopped).
        public var idleExit: Double?

        public init(id: String, pipelineHash: String, output: URL) {
            self.id = id
            self.pipelineHash = pipelineHash
            self.output = output
        }
    }

    /// Runs the pipeline on `item`, writing its outputs into `staging`. Throws on failure
    /// (a `ClusterError` with `permanent` when retrying cannot help).
    public typealias Process = @Sendable (_ item: WorkItem, _ staging: URL) throws -> Void

    /// One line per event, for the worker's log (stderr) and the tests.
    public enum Event: Sendable {
        case started(WorkItem, delivery: Int)
        case finished(WorkItem, seconds: Double, pipelineSeconds: Double, committed: Bool)
        case alreadyDone(WorkItem)
        case retrying(WorkItem?, error: String, after: Double)
        case deadLettered(WorkItem?, error: String)
        case trouble(String)
    }

    let connection: NATSConnection
    let settings: Settings
    let layout: QueueLayout
    let process: Process
    public var onEvent: @Sendable (Event) -> Void = { _ in }
    private let stopping = Atomic<Bool>(false)
    private let state = Mutex<(item: WorkItem?, started: Double?, done: Int, failed: Int)>((nil, nil, 0, 0))
    private let startedAt = Date().timeIntervalSince1970

    public init(connection: NATSConnection, settings: Settings, layout: QueueLayout = QueueLayout(), process: @escaping Process) {
        self.connection = connection
        self.settings = settings
        self.layout = layout
        self.process = process
    }

    /// Finish the current item, then return from `run`.
    public func stop() { stopping.store(true, ordering: .relaxed) }

    public var counts: (done: Int, failed: Int) { state.withLock { ($0.done, $0.failed) } }

    /// Pulls and processes until stopped (or idle for `idleExit`).
    public func run() throws {
        let js = connection.jetStream
        try layout.ensure(js)
        try layout.ensureConsumer(js, pipelineHash: settings.pipelineHash, ackWait: settings.ackWait,
                                  maxDeliveries: settings.policy.maxDeliveries)
        let done = try layout.doneBucket(js)
        let workers = try layout.workersBucket(js)
        let subscription = try js.pullSubscription(stream: QueueLayout.workStream, durable: QueueLayout.consumer(pipelineHash: settings.pipelineHash),
                                                   subject: QueueLayout.workSubject(pipelineHash: settings.pipelineHash))
        let outputs = ItemOutputs(directory: settings.output)
        let beat = repeating(every: settings.heartbeat) { [self] in _ = try? workers.put(settings.id, beatData()) }
        defer {
            beat.cancel()
            try? workers.delete(settings.id)
        }
        var idleSince = Date()
        var troubleDelay = 0.25
        while !stopping.load(ordering: .relaxed) {
            let messages: [JetStreamMessage]
            do {
                messages = try subscription.fetch(count: 1, timeout: settings.pullTimeout)
                troubleDelay = 0.25
            } catch {
                // Disconnected or the server restarting: the client reconnects by itself.
                onEvent(.trouble("\(error)"))
                Thread.sleep(forTimeInterval: troubleDelay)
                troubleDelay = min(troubleDelay * 2, 5)
                continue
            }
            if messages.isEmpty {
                if let idle = settings.idleExit, Date().timeIntervalSince(idleSince) >= idle { break }
                continue
            }
            for message in messages { handle(message, js: js, done: done, outputs: outputs) }
            idleSince = Date()
        }
    }

    func handle(_ message: JetStreamMessage, js: JetStream, done: KeyValueBucket, outputs: ItemOutputs) {
        let delivery = message.deliveryCount
        let item: WorkItem
        do { item = try WorkItem.decode(message.data) } catch {
            conclude(message, item: nil, outcome: .failed(permanent: true), error: "\(error)", js: js)
            return
        }
        if isDone(item, done: done, outputs: outputs) {
            onEvent(.alreadyDone(item))
            conclude(message, item: item, outcome: .alreadyDone, error: nil, js: js)
            return
        }
        onEvent(.started(item, delivery: delivery))
        let started = Date().timeIntervalSince1970
        state.withLock {
            $0.item = item
            $0.started = started
        }
        // Tell the server we are alive more often than it would give the item away.
        let progress = repeating(every: max(settings.ackWait / 3, 0.5)) { try? message.inProgress() }
        var outcome = DeliveryPolicy.Outcome.succeeded
        var failure: String?
        do {
            let actual = try sha256(ofFile: item.path)
            guard actual == item.sha256 else {
                throw ClusterError("'\(item.path)' changed since it was submitted (sha256 \(actual.prefix(12))…, expected \(item.sha256.prefix(12))…)",
                                   hint: "submit it again", permanent: true)
            }
            let staging = try outputs.stage(key: item.key, worker: settings.id)
            let pipelineStarted = Date().timeIntervalSince1970
            try process(item, staging)
            let pipelineSeconds = Date().timeIntervalSince1970 - pipelineStarted
            let record = DoneRecord(key: item.key, name: item.name, path: item.path, output: outputs.final(key: item.key).path,
                                    worker: settings.id, finished: Date().timeIntervalSince1970, deliveries: delivery)
            let manifest = Self.encode(record)
            let committed = try outputs.commit(staging: staging, key: item.key, manifest: manifest) == .committed
            // The journal entry is written once: a later writer finds it there.
            _ = try done.create(item.key, manifest)
            onEvent(.finished(item, seconds: Date().timeIntervalSince1970 - started, pipelineSeconds: pipelineSeconds, committed: committed))
        } catch {
            failure = "\(error)"
            // A slower attempt can fail because a faster one committed meanwhile.
            outcome = isDone(item, done: done, outputs: outputs) ? .alreadyDone : .failed(permanent: (error as? ClusterError)?.permanent ?? false)
        }
        progress.cancel()
        state.withLock {
            $0.item = nil
            $0.started = nil
            if case .failed = outcome { $0.failed += 1 } else { $0.done += 1 }
        }
        conclude(message, item: item, outcome: outcome, error: failure, js: js)
    }

    /// Done means committed on disk and recorded in the journal; a committed folder without
    /// its journal entry (the worker died between the two) gets the entry now.
    func isDone(_ item: WorkItem, done: KeyValueBucket, outputs: ItemOutputs) -> Bool {
        guard outputs.isComplete(key: item.key) else { return false }
        if (try? done.get(item.key)) == nil {
            let manifest = (try? Data(contentsOf: outputs.final(key: item.key).appendingPathComponent(ItemOutputs.manifestName))) ?? Data()
            _ = try? done.create(item.key, manifest)
        }
        return true
    }

    func conclude(_ message: JetStreamMessage, item: WorkItem?, outcome: DeliveryPolicy.Outcome, error: String?, js: JetStream) {
        let action = settings.policy.action(for: outcome, delivery: message.deliveryCount)
        do {
            switch action {
            case .ack:
                try message.ack()
            case .retry(let delay):
                onEvent(.retrying(item, error: error ?? "", after: delay))
                try message.nak(delay: delay)
            case .deadLetter:
                let letter = DeadLetter(item: item, error: error ?? "", worker: settings.id, deliveries: message.deliveryCount,
                                        time: Date().timeIntervalSince1970)
                let hash = item?.pipelineHash ?? settings.pipelineHash
                try js.publish(subject: QueueLayout.deadSubject(pipelineHash: hash), data: Self.encode(letter))
                onEvent(.deadLettered(item, error: error ?? ""))
                try message.terminate()
            }
        } catch {
            // The server will redeliver after the ack wait; the item's key keeps that safe.
            onEvent(.trouble("could not \(action) \(item?.name ?? "item"): \(error)"))
        }
    }

    func beatData() -> Data {
        let now = state.withLock { $0 }
        let beat = WorkerBeat(id: settings.id, host: ProcessInfo.processInfo.hostName, pid: getpid(), pipelineHash: settings.pipelineHash,
                              item: now.item?.name, itemStarted: now.started, done: now.done, failed: now.failed, started: startedAt)
        return Self.encode(beat)
    }

    static func encode<T: Encodable>(_ value: T) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(value)) ?? Data()
    }
}

/// Calls `body` now and then every `interval` seconds on a utility queue until cancelled.
func repeating(every interval: Double, _ body: @escaping @Sendable () -> Void) -> any DispatchSourceTimer {
    let timer = DispatchSource.makeTimerSource(queue: .global(qos: .utility))
    timer.schedule(deadline: .now(), repeating: interval)
    timer.setEventHandler(handler: body)
    timer.resume()
    return timer
}
