import Foundation
import SightlineNATS

/// Where the cluster keeps its state in JetStream. One work-queue stream holds every pipeline's
/// items, on one subject per pipeline hash, each with its own durable consumer, so workers of
/// different pipelines never take each other's items.
public struct QueueLayout: Sendable {
    public static let workStream = "SIGHTLINE_WORK"
    public static let workSubjects = "sightline_queue.work.>"
    public static let deadStream = "SIGHTLINE_DEAD"
    public static let deadSubjects = "sightline_queue.dead.>"
    /// Finished items: key → `DoneRecord`. The cluster-wide journal.
    public static let doneBucket = "sightline-done"
    /// Live workers: id → `WorkerBeat`, expiring when a worker stops beating.
    public static let workersBucket = "sightline-workers"

    public var replicas = 1
    /// A second submit of the same item inside this window is dropped by the stream itself.
    public var duplicateWindow: Double = 120
    public var workerTTL: Double = 15

    public init(replicas: Int = 1) { self.replicas = replicas }

    public static func workSubject(pipelineHash: String) -> String { "sightline_queue.work.\(pipelineHash.prefix(12))" }
    public static func deadSubject(pipelineHash: String) -> String { "sightline_queue.dead.\(pipelineHash.prefix(12))" }
    public static func consumer(pipelineHash: String) -> String { "work-\(pipelineHash.prefix(12))" }

    /// Creates (or updates) the streams and buckets; idempotent, so every command calls it.
    public func ensure(_ js: JetStream) throws {
        try js.addStream(name: Self.workStream, subject: Self.workSubjects, workQueue: true, replicas: replicas, duplicateWindow: duplicateWindow)
        try js.addStream(name: Self.deadStream, subject: Self.deadSubjects, workQueue: false, replicas: replicas)
    }

    public func doneBucket(_ js: JetStream) throws -> KeyValueBucket {
        try js.keyValue(bucket: Self.doneBucket, replicas: replicas)
    }

    public func workersBucket(_ js: JetStream) throws -> KeyValueBucket {
        try js.keyValue(bucket: Self.workersBucket, ttl: workerTTL, replicas: replicas)
    }

    /// The pipeline's consumer: `ackWait` without an ack or in-progress before redelivery,
    /// `maxDeliveries` in all.
    public func ensureConsumer(_ js: JetStream, pipelineHash: String, ackWait: Double, maxDeliveries: Int) throws {
        try js.addPullConsumer(stream: Self.workStream, durable: Self.consumer(pipelineHash: pipelineHash),
                               filter: Self.workSubject(pipelineHash: pipelineHash), ackWait: ackWait, maxDeliver: maxDeliveries)
    }
}

/// What the done bucket holds per finished item.
public struct DoneRecord: Codable, Sendable {
    public var key: String
    public var name: String
    public var path: String
    public var output: String
    public var worker: String
    public var finished: Double
    public var deliveries: Int
}

/// What a worker writes in the workers bucket every few seconds.
public struct WorkerBeat: Codable, Sendable {
    public var id: String
    public var host: String
    public var pid: Int32
    public var pipelineHash: String
    /// The item being processed, and since when.
    public var item: String?
    public var itemStarted: Double?
    public var done: Int
    public var failed: Int
    public var started: Double
}

/// A dead letter: an item given up on, with why.
public struct DeadLetter: Codable, Sendable {
    public var item: WorkItem?
    public var error: String
    public var worker: String
    public var deliveries: Int
    public var time: Double
}
