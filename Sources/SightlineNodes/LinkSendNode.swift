import Foundation
import SightlineBus
import SightlineCore
import SightlineGraph
import SightlineMedia
import SightlineNATS
import Synchronization

/// NATS settings a node reads from its options: `url`, `token_file`, `creds`.
func natsSettings(_ options: NodeOptions, name: String) throws -> NATSSettings {
    var settings = NATSSettings(urls: try NATSSettings.parseURLs(options.string("url") ?? ""))
    settings.name = name
    settings.connectInBackground = true
    if let file = options.string("token_file"), !file.isEmpty {
        settings.token = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }
    if let creds = options.string("creds"), !creds.isEmpty { settings.credentialsFile = creds }
    return settings
}

/// The options both ends of an edge link take (`link:` in a split pipeline).
let linkConnectionOptions: [OptionSpec] = [
    OptionSpec("url", .string, required: true, help: "NATS server URL(s) the edge and the core share, comma-separated"),
    OptionSpec("subject", .string, required: true, help: "the link's subject (PREFIX.PIPELINE.NODE; set by the split)"),
    OptionSpec("subject_prefix", .string, default: .string("sightline_link"), help: "first subject token of every link; the stream holds PREFIX.>"),
    OptionSpec("stream", .string, default: .string("SIGHTLINE_LINK"), help: "the JetStream stream that holds what the edge sent until the core takes it"),
    OptionSpec("max_age", .double, default: .double(3600), min: 1, max: 30 * 86_400, help: "seconds the stream keeps a message the core has not taken"),
    OptionSpec("token_file", .inputFile, default: .string(""), help: "a file holding the server's auth token"),
    OptionSpec("creds", .inputFile, default: .string(""), help: "a .creds file (user JWT and nkey seed)"),
]

/// The link's JetStream stream, as both ends create it (the server would otherwise take the
/// second end's settings as an update): PREFIX.> kept `max_age` seconds. Returns its name.
@discardableResult
func ensureLinkStream(_ connection: NATSConnection, _ options: NodeOptions) throws -> String {
    let stream = options.string("stream") ?? "SIGHTLINE_LINK", prefix = options.string("subject_prefix") ?? "sightline_link"
    try connection.jetStream.addStream(name: stream, subject: prefix + ".>", workQueue: false, maxAge: options.double("max_age") ?? 3600)
    return stream
}

/// `link_send`: the edge end of a split pipeline (`PipelineSplit` adds it; `at: edge` in the
/// file). Records, status and ends of stream cross as they are; frames cross as JPEG pictures
/// of what changed since the picture the core holds. The link keeps that picture's copy per
/// source in its own `RegionSelector` (not the `regions` node's, whose refreshes serve the
/// models: a fixed window or a periodic model refresh must not resend a still camera's whole
/// picture): changed tiles send rectangles around them, nothing changed sends only the
/// frame's time, and the whole picture goes first, after most tiles changed, and every
/// `whole_every` seconds. Frames of an edge-only source (`privacy`) cross
/// only after a redact node; the rest stay here and are counted. Publishing never blocks the
/// pipeline (`BackgroundPublisher`).
public final class LinkSendNode: NodeProcessor, @unchecked Sendable {
    private let connection: NATSConnection
    private let subject: String
    private let drainTimeout = 10.0
    private let privateSources: Set<String>
    private var publisher: BackgroundPublisher<Data>!
    private var packer: FramePacker
    /// Sources whose messages the full buffer dropped: their next frame goes whole.
    private let needsWhole = SourceSet()
    private var totals = LinkTotals()

    public static let descriptor = NodeDescriptor(
        name: PipelineSplit.sendType,
        description: "Edge end of a split pipeline: sends records and changed-tile JPEGs of frames to the core over NATS JetStream; never blocks.",
        role: .sink, inputs: .any, outputs: nil,
        options: linkConnectionOptions + [
            OptionSpec("qscale", .int, default: .int(8), min: 2, max: 31, help: "JPEG quantiser of the frames sent: 2 best and largest, 31 smallest"),
            OptionSpec("tile", .int, default: .int(16), min: 4, max: 512, help: "tile size of the changed-picture grid, in pixels"),
            OptionSpec("threshold", .double, default: .double(12), min: 0, max: 255, help: "luma change of a pixel that counts (after the global brightness shift); 0: any byte"),
            OptionSpec("min_pixels", .double, default: .double(0.1), min: 0, max: 1, help: "fraction of a tile's pixels that must change for the tile to be sent"),
            OptionSpec("whole_above", .double, default: .double(0.6), min: 0, max: 1, help: "send the whole picture when more than this fraction of the tiles changed"),
            OptionSpec("whole_every", .double, default: .double(60), min: 0, max: 86_400, help: "seconds of media between whole pictures (the core's picture stops drifting); 0: only when needed"),
            OptionSpec("buffer", .int, default: .int(1000), min: 1, max: 1_000_000, help: "messages held while NATS is slow or away; beyond it the oldest are dropped and counted"),
            OptionSpec("private_sources", .string, default: .string(""), help: "sources whose frames cross only after a redact node (`privacy: edge-only`; set by the split)"),
        ])

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(try LinkSendNode(options: options))
    }

    init(options: NodeOptions) throws {
        connection = try NATSConnection(try natsSettings(options, name: "sightline-link-send"))
        subject = options.string("subject") ?? ""
        let tile = options.int("tile") ?? 16, threshold = options.double("threshold") ?? 12
        let minPixels = options.double("min_pixels") ?? 0.1, wholeAbove = options.double("whole_above") ?? 0.6
        packer = FramePacker(tileSize: tile, threshold: threshold, minChangedPixels: minPixels, wholeAbove: wholeAbove,
                             wholeEvery: options.double("whole_every") ?? 60, qscale: options.int("qscale") ?? 8)
        privateSources = Set((options.string("private_sources") ?? "").split(separator: ",").map { String($0) })
        let connection = self.connection, subject = self.subject
        let needsWhole = self.needsWhole
        publisher = BackgroundPublisher(
            connection: connection, capacity: options.int("buffer") ?? 1000, label: "link \(subject)",
            prepare: { try ensureLinkStream(connection, options) },
            send: { data in try connection.jetStream.publish(subject: subject, data: data) },
            dropReport: { source, _ in
                // The core's picture of this source is stale now: start it over.
                needsWhole.value.withLock { _ = $0.insert(source) }
                return nil
            })
    }

    private func isPrivate(_ sourceID: String) -> Bool {
        !privateSources.isEmpty && privateSources.contains(SourceName.root(sourceID))
    }

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        let now = context.clock.now()
        switch item {
        case .record(let record):
            let data = try LinkCodec.encode(record: record, sentAt: now)
            totals.recordBytesByKind[record.kind.rawValue, default: 0] += data.count
            send(data, source: record.sourceID, kind: .record, context: context)
        case .frame(let frame):
            if isPrivate(frame.sourceID) && frame.metadata[RedactNode.appliedKey] == nil {
                totals.withheld += 1
                return
            }
            let stale = needsWhole.value.withLock { $0.remove(frame.sourceID) != nil }
            let (info, parts) = try packer.pack(frame, forceWhole: stale)
            totals.count(info.transfer)
            send(try LinkCodec.encode(frame: info, parts: parts, sentAt: now),
                 source: frame.sourceID, kind: .frame, context: context)
        case .status(let status):
            switch status.detail {
            case .heartbeat, .endOfStream: return   // the core has its own; ends cross as items
            default:
                send(try LinkCodec.encode(.status, status: status, sentAt: now),
                     source: status.sourceID ?? Envelope.pipelineSource, kind: .status, context: context)
            }
        case .endOfStream(let eos):
            packer.forget(eos.sourceID)
            send(try LinkCodec.encode(.endOfStream, endOfStream: eos, sentAt: now),
                 source: eos.sourceID, kind: .status, context: context)
        }
    }

    private func send(_ data: Data, source: String, kind: LinkTotals.Kind, context: any NodeContext) {
        totals.add(bytes: data.count, kind: kind)
        if let dropped = publisher.push(data, source: source) {
            totals.dropped += 1
            context.metrics.sinkDropped(source: dropped)
        }
    }

    public func close(context: any NodeContext) throws {
        if let end = try? LinkCodec.encode(.end, sentAt: context.clock.now()) {
            send(end, source: Envelope.pipelineSource, kind: .status, context: context)
        }
        let (held, _) = publisher.close(drainTimeout: drainTimeout)
        let lost = held.values.reduce(0, +)
        for (source, count) in held { context.metrics.sinkDropped(source: source, count: count) }
        if connection.isConnected { try? connection.flush(timeout: 1) }
        connection.close()
        FileHandle.standardError.write(Data("link \(subject): \(totals.summary)\(lost > 0 ? "; \(lost) not delivered after \(drainTimeout) s" : "")\n".utf8))
    }
}

/// What an edge link sent, for its end-of-run line.
struct LinkTotals {
    enum Kind { case frame, record, status }
    var frameBytes = 0, statusBytes = 0
    var full = 0, tiles = 0, unchanged = 0, withheld = 0, dropped = 0
    var recordBytesByKind: [String: Int] = [:]
    var recordBytes: Int { recordBytesByKind.values.reduce(0, +) }

    mutating func add(bytes: Int, kind: Kind) {
        switch kind {
        case .frame: frameBytes += bytes
        case .record: break   // counted by kind (`recordBytesByKind`)
        case .status: statusBytes += bytes
        }
    }

    mutating func count(_ transfer: LinkCodec.Transfer) {
        switch transfer {
        case .full: full += 1
        case .tiles: tiles += 1
        case .unchanged: unchanged += 1
        }
    }

    var summary: String {
        "sent \(frameBytes + recordBytes + statusBytes) bytes (frames \(frameBytes): \(full) whole, \(tiles) changed tiles, \(unchanged) unchanged; records \(recordBytes)\(recordBytesByKind.isEmpty ? "" : " = " + recordBytesByKind.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")); status \(statusBytes)); \(withheld) frames withheld (edge-only), \(dropped) dropped"
    }
}

/// Source ids shared with a sender thread.
final class SourceSet: Sendable {
    let value = Mutex<Set<String>>([])
}
