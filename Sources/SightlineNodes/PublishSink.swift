import Foundation
import SightlineBus
import SightlineCore
import SightlineGraph

/// `publish`: sends records and status to ZeroMQ subscribers (see Docs/bus.md for the schema).
public final class PublishSink: NodeProcessor {
    private let publisher: BusPublisher
    private let waitSubscribers: Int
    private let waitTimeout: Double
    private let vectorFormat: Envelope.VectorFormat
    private let statusTimeout: Double
    private var encoder: EnvelopeEncoder?
    private var waited = false

    public static let descriptor = NodeDescriptor(
        name: "publish",
        description: "Publish records and status on ZeroMQ topics KIND/SOURCE/ (multipart: topic, JSON header, optional float vector).",
        role: .sink, inputs: .records, outputs: nil,
        options: [
            OptionSpec("endpoint", .string, required: true, help: "Savant-style endpoint(s), comma-separated: pub+bind:tcp://127.0.0.1:5555, pub+connect:ipc:///tmp/s"),
            OptionSpec("hwm", .int, default: .int(1000), min: 1, max: 10_000_000, help: "messages queued per subscriber before it counts as full"),
            OptionSpec("when_full", .choice(["block", "drop"]), default: .string("block"), help: "a subscriber is full: block (wait up to block_timeout, batch) or drop and count (live)"),
            OptionSpec("block_timeout", .double, default: .double(5), min: 0, max: 3600, help: "seconds to wait for a full subscriber before dropping"),
            OptionSpec("linger_ms", .int, default: .int(5000), min: 0, max: 600_000, help: "at exit, how long queued messages may take to leave"),
            OptionSpec("wait_subscribers", .int, default: .int(0), min: 0, max: 10_000, help: "wait for this many subscribers before the first message (batch jobs lose nothing)"),
            OptionSpec("wait_timeout", .double, default: .double(30), min: 0, max: 86_400, help: "seconds to wait for those subscribers"),
            OptionSpec("vector_format", .choice(Envelope.VectorFormat.allCases.map(\.rawValue)), default: .string("float32"), help: "vector payload type"),
        ])

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(try PublishSink(options: options))
    }

    init(options: NodeOptions) throws {
        let endpoints = try (options.string("endpoint") ?? "").split(separator: ",").map {
            try BusEndpoint(parsing: String($0), defaultRole: .pub)
        }
        let blockTimeout = options.double("block_timeout") ?? 5
        publisher = try BusPublisher(endpoints: endpoints, options: .init(
            highWaterMark: Int32(options.int("hwm") ?? 1000),
            lingerMilliseconds: Int32(options.int("linger_ms") ?? 5000),
            whenFull: options.string("when_full") == "drop" ? .drop : .block(blockTimeout)))
        waitSubscribers = options.int("wait_subscribers") ?? 0
        waitTimeout = options.double("wait_timeout") ?? 30
        vectorFormat = Envelope.VectorFormat(rawValue: options.string("vector_format") ?? "float32") ?? .float32
        statusTimeout = max(blockTimeout, Double(options.int("linger_ms") ?? 5000) / 1000)
    }

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        if !waited {
            waited = true
            if waitSubscribers > 0 { try publisher.waitForSubscribers(waitSubscribers, timeout: waitTimeout) }
        }
        if encoder == nil {
            encoder = EnvelopeEncoder(pipelineName: context.pipelineName, pipelineHash: context.pipelineHash, vectorFormat: vectorFormat)
        }
        switch item {
        case .record(let record):
            let message = encoder!.encode(record, wallClock: context.clock.now())
            context.metrics.delivered(source: record.sourceID, seconds: record.end)
            if try publisher.publish(message) {
                if let ingest = record.ingestWallClock { context.metrics.latency(context.clock.now() - ingest) }
            } else {
                context.metrics.sinkDropped(source: record.sourceID)
            }
        case .status(let status):
            encoder!.noteOrigin(from: status)
            // Status is what tells subscribers about trouble: wait for room rather than drop.
            if !(try publisher.publish(encoder!.encode(status), whenFull: .block(statusTimeout))) {
                context.metrics.sinkDropped(source: status.sourceID ?? Envelope.pipelineSource)
            }
        case .endOfStream(let eos):
            let status = StatusEvent(.endOfStream(eos, context.metrics.sourceCounters(eos.sourceID)), sourceID: eos.sourceID, wallClock: context.clock.now())
            let message = encoder!.encode(status)
            _ = try publisher.publish(message, whenFull: .block(statusTimeout))
            context.metrics.delivered(endOf: eos.sourceID)
        case .frame:
            break
        }
    }

    public func close(context: any NodeContext) throws {
        publisher.close()
    }
}
