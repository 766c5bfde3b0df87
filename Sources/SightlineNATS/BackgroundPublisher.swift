import Foundation
import Synchronization

/// Publishes from its own thread so the caller never blocks: messages wait in a bounded
/// `PublishBuffer` while NATS is slow or away (the oldest dropped and counted when it is
/// full), and when the connection is back the drops are reported first (`dropReport`), then
/// the held messages leave in order. `prepare` runs once connected, before anything is sent
/// (creating a stream), and is retried until it succeeds. Used by the results sink and the
/// edge link.
public final class BackgroundPublisher<Message: Sendable>: @unchecked Sendable {
    public typealias Send = @Sendable (Message) throws -> Void

    private let connection: NATSConnection
    private let buffer: Mutex<PublishBuffer<Message>>
    private let prepare: @Sendable () throws -> Void
    private let send: Send
    private let dropReport: @Sendable (_ source: String, _ count: Int) -> Message?
    private let wake = DispatchSemaphore(value: 0)
    private let closing = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let label: String

    public init(connection: NATSConnection, capacity: Int, label: String, prepare: @escaping @Sendable () throws -> Void = {},
                send: @escaping Send, dropReport: @escaping @Sendable (String, Int) -> Message? = { _, _ in nil }) {
        self.connection = connection
        self.buffer = Mutex(PublishBuffer(capacity: capacity))
        self.label = label
        self.prepare = prepare
        self.send = send
        self.dropReport = dropReport
        Thread.detachNewThread { [self] in loop() }
    }

    /// Queues a message; returns the source of the message dropped to make room, if any.
    public func push(_ message: Message, source: String) -> String? {
        let dropped = buffer.withLock { $0.push(message, source: source) }
        wake.signal()
        return dropped
    }

    public var isEmpty: Bool { buffer.withLock { $0.isEmpty } }

    private func loop() {
        var prepared = false
        while true {
            let isClosing = closing.load(ordering: .acquiring)
            if !connection.isConnected {
                if isClosing { break }
                _ = wake.wait(timeout: .now() + 0.1)
                continue
            }
            if !prepared {
                do {
                    try prepare()
                    prepared = true
                } catch {
                    FileHandle.standardError.write(Data("warning: \(label): \(error)\n".utf8))
                    if isClosing { break }
                    _ = wake.wait(timeout: .now() + 1)
                    continue
                }
            }
            for (source, count) in buffer.withLock({ $0.takeDropReport() }).sorted(by: { $0.key < $1.key }) {
                guard let report = dropReport(source, count) else { continue }
                if (try? send(report)) == nil { buffer.withLock { $0.pushFront(report, source: source) } }
            }
            guard let next = buffer.withLock({ $0.popFirst() }) else {
                if isClosing { break }
                _ = wake.wait(timeout: .now() + 0.1)
                continue
            }
            do {
                try send(next.message)
            } catch {
                buffer.withLock { $0.pushFront(next.message, source: next.source) }
                if isClosing && !connection.isConnected { break }
                _ = wake.wait(timeout: .now() + 0.05)
            }
        }
        finished.signal()
    }

    /// Gives held messages `drainTimeout` seconds to leave, then stops. Returns what was
    /// still held (now dropped) and the drops that were never reported, per source.
    public func close(drainTimeout: Double) -> (held: [String: Int], unreported: [String: Int]) {
        let deadline = Date().addingTimeInterval(drainTimeout)
        while Date() < deadline, !isEmpty {
            wake.signal()
            Thread.sleep(forTimeInterval: 0.02)
        }
        closing.store(true, ordering: .releasing)
        wake.signal()
        _ = finished.wait(timeout: .now() + max(drainTimeout, 1))
        return buffer.withLock { buffer in
            let held = buffer.dropAll()
            return (held, buffer.takeDropReport())
        }
    }
}
