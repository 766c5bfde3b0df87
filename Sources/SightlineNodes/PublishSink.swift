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
    /// `when_full: drop`: a live pipeline, whose publisher never waits on a slow subscriber.
    private let isLive: Bool
    private var encoder: EnvelopeEncoder?
    private var waited = false

    public static let descriptor = NodeDescriptor(
        name: "publish",
        description: "Publish records and status on ZeroMQ topics KIND/SOURCE/ (multipart: topic, JSON header, optional float vector).",
        role: .sink, inputs: .records, outputs: nil,
        options: [
            OptionSpec("endpoint", .string, required: true, help: "Savant-style endpoint(s), comma-separated: pub+bind:tcp://127.0.0.1:5555, pub+connect:ipc:///tmp/s"),
            OptionSpec("hwm", .int, default: .int(1000), min: 1, max: 10_000_000, help: "messages queued per subscriber before it counts as full"),
            OptionSpec("when_full", .choice(["block", "drop"]), default: .string("block"), help: "a subscriber is full: block (wait up to block_timeout; batch) or drop at that subscriber's queue only (live; it sees gaps in seq)"),
            OptionSpec("block_timeout", .double, default: .double(5), min: 0, max: 3600, help: "seconds to wait for a full subscriber before dropping"),
            OptionSpec("linger_ms", .int, default: .int(5000), min: 0, max: 600_000, help: "at exit, how long queued messages may take to leave"),
            OptionSpec("wait_subscribers", .int, default: .int(0), min: 0, max: 10_000, help: "wait for this many subscribers before the first message (batch jobs lose nothing)"),
            OptionSpec("wait_timeout", .double, default: .double(30), min: 0, max: 86_400, help: "seconds to wait for those subscribers"),
            OptionSpec("curve_secret_key", .inputFile, default: .string(""), help: "the publisher's CURVE certificate (NAME.key_secret from sightline keys generate): encrypt, and admit only curve_clients",
                       checkFile: { _ = try CurveKeyPair.loadSecret($0) }),
            OptionSpec("curve_clients", .inputFolder, default: .string(""), help: "folder of allowed subscribers' public certificates (*.key); needed with curve_secret_key",
                       checkFile: { _ = try CurveKeyPair.loadPublicKeys(folder: $0) }),
            OptionSpec("insecure_ok", .bool, default: .bool(false), help: "silence the warning for a non-loopback address without CURVE (a trusted network)"),
            OptionSpec("max_inbound_bytes", .int, default: .int(65_536), min: 64, max: 1_073_741_824, help: "largest message a peer may send the publisher (subscriptions); a larger one drops that peer"),
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
        let secretKeyFile = options.string("curve_secret_key") ?? ""
        let clientsFolder = options.string("curve_clients") ?? ""
        var curve: CurveServerSettings?
        switch (secretKeyFile.isEmpty, clientsFolder.isEmpty) {
        case (true, true): curve = nil
        case (false, false): curve = try CurveServerSettings(secretKeyFile: secretKeyFile, clientKeysFolder: clientsFolder)
        default: throw SightlineError.invalidOption(name: secretKeyFile.isEmpty ? "curve_secret_key" : "curve_clients", value: "",
                                                     hint: "curve_secret_key and curve_clients go together: the key encrypts, the folder says who may subscribe")
        }
        for warning in Self.exposureWarnings(endpoints: endpoints, encrypted: curve != nil, insecureOK: options.bool("insecure_ok") == true) {
            FileHandle.standardError.write(Data("warning: \(warning)\n".utf8))
        }
        publisher = try BusPublisher(endpoints: endpoints, options: .init(
            highWaterMark: Int32(options.int("hwm") ?? 1000),
            lingerMilliseconds: Int32(options.int("linger_ms") ?? 5000),
            whenFull: options.string("when_full") == "drop" ? .drop : .block(blockTimeout),
            curve: curve,
            maxInboundBytes: Int64(options.int("max_inbound_bytes") ?? 65_536)))
        isLive = options.string("when_full") == "drop"
        waitSubscribers = options.int("wait_subscribers") ?? 0
        waitTimeout = options.double("wait_timeout") ?? 30
        vectorFormat = Envelope.VectorFormat(rawValue: options.string("vector_format") ?? "float32") ?? .float32
        statusTimeout = max(blockTimeout, Double(options.int("linger_ms") ?? 5000) / 1000)
    }

    /// A bus others can reach and nobody encrypts is worth a warning unless the user said the
    /// network is trusted.
    static func exposureWarnings(endpoints: [BusEndpoint], encrypted: Bool, insecureOK: Bool) -> [String] {
        guard !encrypted, !insecureOK else { return [] }
        return endpoints.filter { !$0.isLoopbackOnly }.map {
            "publish endpoint '\($0.address)' is reachable from other machines and not encrypted; "
                + "set curve_secret_key and curve_clients (sightline keys generate), or insecure_ok: true on a trusted network"
        }
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
                if let ingest = record.ingestWallClock { context.metrics.latency(context.clock.now() - ingest, source: record.sourceID) }
            } else {
                context.metrics.sinkDropped(source: record.sourceID)
            }
        case .status(let status):
            encoder!.noteOrigin(from: status)
            // Status is what tells subscribers about trouble: in batch it waits for room rather
            // than drop. Live, it goes like records: a stuck subscriber must not stall the rest.
            if !(try publisher.publish(encoder!.encode(status), whenFull: isLive ? .drop : .block(statusTimeout))) {
                context.metrics.sinkDropped(source: status.sourceID ?? Envelope.pipelineSource)
            }
        case .endOfStream(let eos):
            let status = StatusEvent(.endOfStream(eos, context.metrics.sourceCounters(eos.sourceID)), sourceID: eos.sourceID, wallClock: context.clock.now())
            let message = encoder!.encode(status)
            // The end of a stream waits for every subscriber (live: at most 1 s, then it goes
            // to those with room).
            _ = try publisher.publish(message, whenFull: .block(isLive ? min(statusTimeout, 1) : statusTimeout))
            context.metrics.delivered(endOf: eos.sourceID)
        case .frame:
            break
        }
    }

    public func close(context: any NodeContext) throws {
        publisher.close()
    }
}
