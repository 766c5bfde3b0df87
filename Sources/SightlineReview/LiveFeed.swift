import Foundation
import SightlineBus

/// The bus, relayed to browsers: one subscriber thread reads a pipeline's messages and hands
/// each message's topic and header (never its vector payload) to every open live view.
///
/// Each view has its own bounded buffer that keeps the newest messages: a slow or stalled
/// browser loses its own old messages, never holds up the subscriber or the other views
/// (the same rule as the bus's live publishers).
public final class LiveFeed: @unchecked Sendable {
    /// Messages a view may fall behind by before its oldest are dropped.
    public static let bufferPerView = 256

    public let endpoint: String
    private let subscriber: BusSubscriber
    private let lock = NSLock()
    private var views: [UUID: AsyncStream<String>.Continuation] = [:]
    private var stopped = false
    private var thread: Thread?

    /// Kinds worth showing live (vectors and per-frame statistics are too many and too raw).
    static let shownKinds: Set<String> = ["captions", "moderation", "labels", "ocr", "people", "faces", "track_events", "status", "review", "shots"]

    public init(endpoint: String) throws {
        self.endpoint = endpoint
        subscriber = try BusSubscriber(endpoint: try BusEndpoint(parsing: endpoint, defaultRole: .sub), receiveHighWaterMark: 1000)
        let thread = Thread { [weak self] in self?.relay() }
        thread.name = "sightline.live-feed"
        self.thread = thread
        thread.start()
    }

    /// A new live view's messages (JSON text: {"topic", "header"}), until it is cancelled.
    public func subscribe() -> (id: UUID, messages: AsyncStream<String>) {
        let id = UUID()
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(Self.bufferPerView))
        continuation.onTermination = { [weak self] _ in self?.unsubscribe(id) }
        lock.withLock { views[id] = continuation }
        return (id, stream)
    }

    public func unsubscribe(_ id: UUID) {
        _ = lock.withLock { views.removeValue(forKey: id) }
    }

    public var viewCount: Int { lock.withLock { views.count } }

    public func stop() {
        let open = lock.withLock { () -> [AsyncStream<String>.Continuation] in
            stopped = true
            defer { views.removeAll() }
            return Array(views.values)
        }
        for view in open { view.finish() }
    }

    private func relay() {
        while !lock.withLock({ stopped }) {
            guard let message = try? subscriber.receive(timeout: 0.2) else { continue }
            let kind = message.topic.split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
            guard Self.shownKinds.contains(kind) else { continue }
            let text = "{\"topic\":" + Self.quoted(message.topic) + ",\"header\":" + String(decoding: message.header, as: UTF8.self) + "}"
            let open = lock.withLock { Array(views.values) }
            for view in open { view.yield(text) }
        }
        subscriber.close()
    }

    static func quoted(_ text: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
        return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
    }
}
