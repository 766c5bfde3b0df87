import Foundation
import SightlineBus
import SightlineCore
import SightlineGraph

/// `jsonl`: writes every record and status event as one line, in the same form
/// `sightline subscribe` prints (`{"topic":…,"header":{…}}`). Each line is one write, so a
/// file cut short by a kill still parses line by line; end-of-stream lines close each source.
public final class JSONLSink: NodeProcessor {
    private let path: String
    private let includeVectors: Bool
    private var encoder: EnvelopeEncoder?
    private let handle: FileHandle

    public static let descriptor = NodeDescriptor(
        name: "jsonl",
        description: "Write records and status as JSON lines (the subscriber's line format) to a file.",
        role: .sink, inputs: .records, outputs: nil,
        options: [
            OptionSpec("path", .string, required: true, help: "output file (created or truncated)"),
            OptionSpec("vectors", .bool, default: .bool(false), help: "include vector payloads as a \"vector\" array"),
        ])

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(try JSONLSink(path: options.string("path") ?? "", includeVectors: options.bool("vectors") ?? false))
    }

    init(path: String, includeVectors: Bool) throws {
        self.path = path
        self.includeVectors = includeVectors
        let url = URL(fileURLWithPath: path)
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw SightlineError.cannotOpen(input: path, reason: "cannot create the JSONL output file")
        }
        self.handle = handle
    }

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        if encoder == nil { encoder = EnvelopeEncoder(pipelineName: context.pipelineName, pipelineHash: context.pipelineHash) }
        let message: BusMessage
        switch item {
        case .record(let record):
            message = encoder!.encode(record, wallClock: context.clock.now())
            if let ingest = record.ingestWallClock { context.metrics.latency(context.clock.now() - ingest) }
        case .status(let status):
            message = encoder!.encode(status)
        case .endOfStream(let eos):
            var fields = eos.fields
            fields.merge(context.metrics.sourceFields(eos.sourceID)) { mine, _ in mine }
            message = encoder!.encode(StatusEvent(kind: .endOfStream, sourceID: eos.sourceID, fields: fields, wallClock: context.clock.now()))
        case .frame:
            return
        }
        try handle.write(contentsOf: Data((message.jsonLine(includeVector: includeVectors) + "\n").utf8))
    }

    public func close(context: any NodeContext) throws {
        try handle.synchronize()
        try handle.close()
    }
}

/// `passthrough`: forwards everything unchanged (wiring, and measuring scheduler overhead).
public final class PassthroughNode: NodeProcessor {
    public static let descriptor = NodeDescriptor(
        name: "passthrough", description: "Forward every item unchanged.",
        role: .transform, inputs: .any, outputs: .any, options: [], allowsConcurrency: true)

    public static let factory = NodeFactory(descriptor: descriptor) { _, _ in .processor(PassthroughNode()) }

    public init() {}

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        emit(item)
    }
}

/// `null`: a sink that discards frames and counts records (benchmarks, dry runs).
public final class NullSink: NodeProcessor {
    public static let descriptor = NodeDescriptor(
        name: "null", description: "Discard everything (benchmarks and dry runs).",
        role: .sink, inputs: .any, outputs: nil, options: [])

    public static let factory = NodeFactory(descriptor: descriptor) { _, _ in .processor(NullSink()) }

    public init() {}

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        if case .record(let record) = item, let ingest = record.ingestWallClock {
            context.metrics.latency(context.clock.now() - ingest)
        }
    }
}
