import Foundation
import SightlineBus
import SightlineCore
import SightlineGraph

/// `jsonl`: writes every record and status event as one line, in the same form
/// `sightline subscribe` prints (`{"topic":…,"header":{…}}`). Each line is one write, so a
/// file cut short by a kill still parses line by line; end-of-stream lines close each source.
///
/// With `dir` instead of `path`, each source gets its own file there, written as
/// `NAME.jsonl.partial` and renamed to `NAME.jsonl` when the source ends complete; finished
/// batch files are recorded in the `BatchJournal` of the pipeline's output folder, which a
/// `files` source with `resume` reads. Pipeline-wide status (heartbeats) goes to
/// `pipeline.jsonl` there. Relative paths are relative to the output folder (`--output DIR`).
public final class JSONLSink: NodeProcessor {
    private let includeVectors: Bool
    private var encoder: EnvelopeEncoder?
    private let single: FileHandle?
    private let outputs: SourceOutputFiles?
    private let journal: BatchJournal?
    /// The running pipeline's results hash, recorded with each finished file.
    private var resultsHash: String?
    private var perSource: [String: FileHandle] = [:]

    public static let descriptor = NodeDescriptor(
        name: "jsonl",
        description: "Write records and status as JSON lines (the subscriber's line format) to a file, or one file per source in a folder.",
        role: .sink, inputs: .records, outputs: nil,
        options: [
            OptionSpec("path", .outputPath, help: "output file (created or truncated), relative to the output folder; set this or `dir`"),
            OptionSpec("dir", .outputPath, help: "folder, relative to the output folder (`.`: the output folder itself): one NAME.jsonl per source, complete files only (batch jobs, resumable)"),
            OptionSpec("vectors", .bool, default: .bool(false), help: "include vector payloads as a \"vector\" array"),
        ], exactlyOneOf: [["path", "dir"]])

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(try JSONLSink(path: options.string("path") ?? "", directory: options.string("dir") ?? "", includeVectors: options.bool("vectors") ?? false,
                                 journalFolder: options.outputDirectory))
    }

    init(path: String, directory: String = "", includeVectors: Bool, journalFolder: String? = nil) throws {
        self.includeVectors = includeVectors
        guard path.isEmpty != directory.isEmpty else {
            throw SightlineError.invalidOption(name: "jsonl path/dir", value: path.isEmpty ? "(neither)" : "(both)", hint: "set exactly one of `path` (one file) and `dir` (one file per source)")
        }
        if directory.isEmpty {
            single = try Self.create(path)
            outputs = nil
            journal = nil
        } else {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw SightlineError.cannotOpen(input: directory, reason: "cannot create the output folder: \(error.localizedDescription)")
            }
            single = nil
            outputs = SourceOutputFiles(folder: directory)
            journal = BatchJournal(directory: journalFolder ?? directory)
        }
    }

    private static func create(_ path: String) throws -> FileHandle {
        let url = URL(fileURLWithPath: path)
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw SightlineError.cannotOpen(input: path, reason: "cannot create the JSONL output file")
        }
        return handle
    }

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        if encoder == nil {
            encoder = EnvelopeEncoder(pipelineName: context.pipelineName, pipelineHash: context.pipelineHash)
            resultsHash = context.resultsHash
            // This run's pipeline-wide output (heartbeats) is opened at once, so it replaces a
            // stale `pipeline.jsonl.partial` a killed run left even when this run is too short
            // for a heartbeat; close() commits it.
            if outputs != nil { _ = try handle(for: nil) }
        }
        let message: BusMessage
        let source: String?
        switch item {
        case .record(let record):
            message = encoder!.encode(record, wallClock: context.clock.now())
            if let ingest = record.ingestWallClock { context.metrics.latency(context.clock.now() - ingest, source: record.sourceID) }
            context.metrics.delivered(source: record.sourceID, seconds: record.end)
            source = record.sourceID
        case .status(let status):
            encoder!.noteOrigin(from: status)
            message = encoder!.encode(status)
            source = status.sourceID
        case .endOfStream(let eos):
            let status = StatusEvent(.endOfStream(eos, context.metrics.sourceCounters(eos.sourceID)), sourceID: eos.sourceID, wallClock: context.clock.now())
            message = encoder!.encode(status)
            try handle(for: eos.sourceID).write(contentsOf: Data((message.jsonLine(includeVector: includeVectors) + "\n").utf8))
            try finish(eos)
            context.metrics.delivered(endOf: eos.sourceID)
            return
        case .frame:
            return
        }
        try handle(for: source).write(contentsOf: Data((message.jsonLine(includeVector: includeVectors) + "\n").utf8))
    }

    private func handle(for source: String?) throws -> FileHandle {
        if let single { return single }
        let key = source ?? "pipeline"
        if let open = perSource[key] { return open }
        guard let outputs else { throw SightlineError.cannotOpen(input: key, reason: "the jsonl sink has neither a path nor a dir") }
        let handle = try Self.create(outputs.partialURL(forSource: key).path)
        perSource[key] = handle
        return handle
    }

    /// A source's file is complete: make it visible under its final name and, for a batch
    /// file, record it in the journal (after the rename, so a crash in between redoes it).
    private func finish(_ eos: EndOfStream) throws {
        guard let outputs, let journal, let handle = perSource.removeValue(forKey: eos.sourceID) else { return }
        try handle.synchronize()
        try handle.close()
        guard eos.isComplete else { return }  // stays .partial; a resumed run redoes it
        let final = try outputs.commitOutput(forSource: eos.sourceID)
        if let file = eos.batchFile, let size = file.size, let mtime = file.mtime {
            try journal.append(.init(source: eos.sourceID, path: file.path, size: size, mtime: mtime,
                                     output: journal.reference(to: final), finished: Date().timeIntervalSince1970, pipeline: resultsHash))
        }
    }

    public func close(context: any NodeContext) throws {
        if let single {
            try single.synchronize()
            try single.close()
        }
        for (source, handle) in perSource {
            try handle.synchronize()
            try handle.close()
            // Pipeline-wide status (heartbeats, the batch node's own messages) has no
            // end-of-stream of its own: it is complete when the run ends. A batch file
            // (`NODE/FILE`) still open here was interrupted and stays .partial, to be redone.
            if !source.contains("/") { _ = try? outputs?.commitOutput(forSource: source) }
        }
        perSource = [:]
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
        switch item {
        case .record(let record):
            if let ingest = record.ingestWallClock { context.metrics.latency(context.clock.now() - ingest, source: record.sourceID) }
            context.metrics.delivered(source: record.sourceID, seconds: record.end)
        case .endOfStream(let eos):
            context.metrics.delivered(endOf: eos.sourceID)
        default:
            break
        }
    }
}
