import Foundation
import SightlineBus
import SightlineCore
import SightlineGraph
import SightlineNATS
import Synchronization

/// `nats`: publishes the bus messages on NATS subjects `PREFIX.KIND.SOURCE` (the source's
/// path components as subject tokens), so other machines get results without a ZeroMQ
/// connection to this one. The message data is the JSON header (Docs/bus.md) followed by the
/// binary payload, if any; the `Sightline-Header-Length` field says where the header ends.
/// With `stream`, messages go into a JetStream stream a late subscriber can replay from the
/// start. Publishing never blocks the pipeline: messages wait in a bounded buffer while NATS is
/// slow or away, the oldest are dropped when it is full, and the drops are counted (metrics,
/// run summary) and published as a `status` message once NATS is back.
public final class NATSSink: NodeProcessor, @unchecked Sendable {
    public static let headerLengthField = "Sightline-Header-Length"

    private let connection: NATSConnection
    private let prefix: String
    private let stream: String?
    private let streamMaxAge: Double
    private let drainTimeout: Double
    private let vectorFormat: Envelope.VectorFormat
    private var encoder: EnvelopeEncoder?
    private var publisher: BackgroundPublisher<BusMessage>!
    /// The pipeline's name and hash, for the sender's own (drop report) messages.
    private let identity = PipelineIdentity()

    public static let descriptor = NodeDescriptor(
        name: "nats",
        description: "Publish records and status on NATS subjects PREFIX.KIND.SOURCE (JSON header + payload), optionally into a JetStream stream for replay; never blocks.",
        role: .sink, inputs: .records, outputs: nil,
        options: [
            OptionSpec("url", .string, required: true, help: "NATS server URL(s), comma-separated: nats://127.0.0.1:4222"),
            OptionSpec("subject_prefix", .string, default: .string("sightline"), help: "first subject token: PREFIX.KIND.SOURCE"),
            OptionSpec("stream", .string, default: .string(""), help: "a JetStream stream to write into (created on PREFIX.>), so late subscribers replay from the start; empty: core NATS only"),
            OptionSpec("stream_max_age", .double, default: .double(7 * 86_400), min: 0, max: 10 * 365 * 86_400, help: "seconds the stream keeps a message (0: forever)"),
            OptionSpec("buffer", .int, default: .int(10_000), min: 1, max: 10_000_000, help: "messages held while NATS is slow or away; beyond it the oldest are dropped and counted"),
            OptionSpec("drain_timeout", .double, default: .double(5), min: 0, max: 3600, help: "at the end, seconds to wait for held messages to leave"),
            OptionSpec("token_file", .inputFile, default: .string(""), help: "a file holding the server's auth token"),
            OptionSpec("creds", .inputFile, default: .string(""), help: "a .creds file (user JWT and nkey seed)"),
            OptionSpec("vector_format", .choice(Envelope.VectorFormat.allCases.map(\.rawValue)), default: .string("float32"), help: "vector payload type"),
        ])

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(try NATSSink(options: options))
    }

    init(options: NodeOptions) throws {
        let settings = try natsSettings(options, name: "sightline-nats-sink")
        let prefix = options.string("subject_prefix") ?? "sightline"
        guard SubjectToken.isValid(prefix) else {
            throw SightlineError.invalidOption(name: "subject_prefix", value: prefix, hint: "one subject token: letters, digits, _ and -")
        }
        self.prefix = prefix
        let stream = options.string("stream") ?? ""
        guard stream.isEmpty || SubjectToken.isValid(stream) else {
            throw SightlineError.invalidOption(name: "stream", value: stream, hint: "a stream name: letters, digits, _ and -")
        }
        self.stream = stream.isEmpty ? nil : stream
        streamMaxAge = options.double("stream_max_age") ?? 7 * 86_400
        drainTimeout = options.double("drain_timeout") ?? 5
        vectorFormat = Envelope.VectorFormat(rawValue: options.string("vector_format") ?? "float32") ?? .float32
        let connection = try NATSConnection(settings)
        self.connection = connection
        let subjectPrefix = prefix, streamName = self.stream, maxAge = streamMaxAge, identity = self.identity, format = vectorFormat
        publisher = BackgroundPublisher(
            connection: connection, capacity: options.int("buffer") ?? 10_000, label: "nats",
            prepare: {
                if let streamName { try connection.jetStream.addStream(name: streamName, subject: subjectPrefix + ".>", workQueue: false, maxAge: maxAge) }
            },
            send: { message in
                try connection.publish(subject: Self.subject(prefix: subjectPrefix, topic: message.topic), data: message.header + (message.payload ?? []),
                                       headerKey: Self.headerLengthField, headerValue: String(message.header.count), intoStream: streamName != nil)
            },
            dropReport: { source, count in
                let (name, hash) = identity.value.withLock { $0 }
                var encoder = EnvelopeEncoder(pipelineName: name, pipelineHash: hash, vectorFormat: format)
                return encoder.encode(
                    kind: "status", source: source, start: 0, end: 0,
                    data: ["event": .string("nats_dropped"), "dropped": .int(Int64(count)),
                           "reason": .string("NATS was away or slow and the sink's buffer was full")],
                    wallClock: Date().timeIntervalSince1970)
            })
    }

    /// `PREFIX.KIND.SOURCE…`: the topic's components, each made a valid subject token.
    static func subject(prefix: String, topic: String) -> String {
        let tokens = topic.split(separator: "/").map { SubjectToken.sanitized($0) }
        return ([prefix] + (tokens.isEmpty ? ["unknown"] : tokens)).joined(separator: ".")
    }

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        if encoder == nil {
            encoder = EnvelopeEncoder(pipelineName: context.pipelineName, pipelineHash: context.pipelineHash, vectorFormat: vectorFormat)
            identity.value.withLock { $0 = (context.pipelineName, context.pipelineHash) }
        }
        let message: BusMessage
        let source: String
        switch item {
        case .record(let record):
            message = encoder!.encode(record, wallClock: context.clock.now())
            source = record.sourceID
        case .status(let status):
            encoder!.noteOrigin(from: status)
            message = encoder!.encode(status)
            source = status.sourceID ?? Envelope.pipelineSource
        case .endOfStream(let eos):
            message = encoder!.encode(StatusEvent(.endOfStream(eos, context.metrics.sourceCounters(eos.sourceID)), sourceID: eos.sourceID,
                                                  wallClock: context.clock.now()))
            source = eos.sourceID
        case .frame:
            return
        }
        if let dropped = publisher.push(message, source: source) { context.metrics.sinkDropped(source: dropped) }
    }

    public func close(context: any NodeContext) throws {
        // Held messages get `drain_timeout` to leave, then are dropped (and counted); drops
        // from a full buffer were counted when they happened but could not be reported on NATS.
        let (held, unreported) = publisher.close(drainTimeout: drainTimeout)
        for (source, count) in held { context.metrics.sinkDropped(source: source, count: count) }
        let lost = unreported.values.reduce(0, +)
        if lost > 0 {
            let heldCount = held.values.reduce(0, +)
            FileHandle.standardError.write(Data("warning: nats: \(lost) message(s) not delivered and not reported on NATS: \(lost - heldCount) dropped from the full buffer, \(heldCount) still held after \(drainTimeout) s at the end\n".utf8))
        }
        if connection.isConnected { try? connection.flush(timeout: 1) }
        connection.close()
    }
}

/// The running pipeline's name and hash, learnt from the first item, for messages a sender
/// thread makes itself.
final class PipelineIdentity: Sendable {
    let value = Mutex<(name: String, hash: String)>(("", ""))
}
