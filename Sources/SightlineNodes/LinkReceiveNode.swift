import Foundation
import SightlineCore
import SightlineGraph
import SightlineMedia
import SightlineNATS
import Synchronization

/// `link_receive`: the core end of a split pipeline (`PipelineSplit` puts it where the edge
/// nodes were, as `edge.NODE`). It takes the edge's messages from a durable JetStream consumer,
/// so a core that restarts resumes where it stopped, and passes them on as the edge node
/// would have: records, status and ends of stream as they were, frames rebuilt on the picture
/// it holds per source (the last whole picture with the changed tiles pasted on). A frame
/// whose base picture is missing (a message lost on the way) is skipped until the next whole
/// one and reported. A damaged message is reported and skipped, never trusted.
public final class LinkReceiveNode: SourceProcessor, @unchecked Sendable {
    /// Frame metadata: the link's per-source frame sequence (gaps mean a lost message).
    public static let sequenceKey = "sl.link.sequence"
    public static let transferKey = "sl.link.transfer"

    public let sourceID: String
    private let options: NodeOptions
    private let cancelled = Atomic<Bool>(false)

    public static let descriptor = NodeDescriptor(
        name: PipelineSplit.receiveType,
        description: "Core end of a split pipeline: takes what the edge's link_send sent (records; frames rebuilt from changed-tile JPEGs) from NATS JetStream.",
        role: .source, inputs: nil, outputs: .any,
        options: linkConnectionOptions + [
            OptionSpec("durable", .string, required: true, help: "the durable consumer's name: a restarted core resumes where it stopped"),
            OptionSpec("carries", .string, default: .string(""), help: "result kinds the edge part produces (set by the split, for the contract checks)"),
            OptionSpec("keep_running", .bool, default: .bool(false), help: "keep waiting after the edge's run ends (an always-on core); default: end with it"),
            OptionSpec("max_pixels", .int, default: .int(3840 * 2160), min: 1, max: 16384 * 16384, help: "largest picture accepted from the edge"),
        ],
        contract: NodeContract(producesListedIn: "carries"))

    public static let factory = NodeFactory(descriptor: descriptor) { id, options in
        .source(LinkReceiveNode(id: id, options: options))
    }

    init(id: String, options: NodeOptions) {
        sourceID = id
        self.options = options
    }

    public func cancel() { cancelled.store(true, ordering: .relaxed) }

    public func run(context: any NodeContext, emit: (Item) -> FlowResult) throws -> EndOfStream {
        let connection = try NATSConnection(try natsSettings(options, name: "sightline-link-receive"))
        defer { connection.close() }
        let subject = options.string("subject") ?? "", durable = options.string("durable") ?? sourceID
        var rebuilder = FrameRebuilder(maxPixels: options.int("max_pixels") ?? 3840 * 2160)
        let keepRunning = options.bool("keep_running") ?? false
        var subscription: PullSubscription?
        var ended = false
        var reported = Set<String>()
        func warn(_ key: String, _ message: String) {
            // Each kind of trouble once per run: a flood of one error says nothing more.
            guard reported.insert(key).inserted else { return }
            context.post(StatusEvent(.error(NodeFailure(node: sourceID, message: message, fatal: false)), sourceID: sourceID, wallClock: context.clock.now()))
        }
        while !cancelled.load(ordering: .relaxed) && !ended {
            guard connection.isConnected else {
                Thread.sleep(forTimeInterval: 0.1)
                continue
            }
            if subscription == nil {
                do {
                    let stream = try ensureLinkStream(connection, options)
                    // Ack wait: an emit may block under back-pressure for a while.
                    try connection.jetStream.addPullConsumer(stream: stream, durable: durable, filter: subject, ackWait: 60, maxDeliver: -1)
                    subscription = try connection.jetStream.pullSubscription(stream: stream, durable: durable, subject: subject)
                } catch {
                    warn("subscribe", "cannot take the edge's messages yet (\(error)); retrying")
                    Thread.sleep(forTimeInterval: 1)
                    continue
                }
            }
            let messages: [JetStreamMessage]
            do {
                messages = try subscription?.fetch(count: 16, timeout: 0.5) ?? []
            } catch {
                Thread.sleep(forTimeInterval: 0.2)
                continue
            }
            for message in messages {
                do {
                    let decoded = try LinkCodec.decode(message.data)
                    switch decoded.header.kind {
                    case .end:
                        ended = !keepRunning
                    case .record:
                        if emit(.record(try LinkCodec.record(of: decoded))) == .flushing { ended = true }
                    case .status:
                        if let status = decoded.header.status { context.post(status) }
                    case .endOfStream:
                        if let eos = decoded.header.endOfStream {
                            rebuilder.forget(eos.sourceID)
                            if emit(.endOfStream(eos)) == .flushing { ended = true }
                        }
                    case .frame:
                        switch try rebuilder.frame(from: decoded) {
                        case .frame(let frame):
                            if emit(.frame(frame)) == .flushing { ended = true }
                        case .missingBase(let source):
                            warn("base-\(source)", "frames of \(source) arrived without the picture they build on (a lost link message); skipped until the next whole picture")
                        }
                    }
                } catch {
                    warn("malformed", "skipped a link message that cannot be read: \(error)")
                }
                try? message.ack()
            }
        }
        return EndOfStream(sourceID: sourceID, completed: !cancelled.load(ordering: .relaxed))
    }
}
