import DequeModule

/// The messages a NATS sink holds while the server is slow or away: at most `capacity`, the
/// oldest dropped first, with the drops counted per source so they can be reported once the
/// server is back. A pure value: the sink wraps it in a lock.
public struct PublishBuffer<Message>: Sendable where Message: Sendable {
    public let capacity: Int
    private var queue: Deque<(source: String, message: Message)> = []
    /// Drops per source not yet reported.
    public private(set) var unreportedDrops: [String: Int] = [:]
    public private(set) var totalDrops = 0

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    public var count: Int { queue.count }
    public var isEmpty: Bool { queue.isEmpty }

    /// Adds a message; returns the source of the message dropped to make room, if any.
    public mutating func push(_ message: Message, source: String) -> String? {
        var dropped: String?
        if queue.count >= capacity, let oldest = queue.popFirst() {
            unreportedDrops[oldest.source, default: 0] += 1
            totalDrops += 1
            dropped = oldest.source
        }
        queue.append((source, message))
        return dropped
    }

    public mutating func popFirst() -> (source: String, message: Message)? { queue.popFirst() }

    /// Puts back a message whose publish failed, at the front (order kept). When the buffer
    /// filled meanwhile, it is the one dropped.
    public mutating func pushFront(_ message: Message, source: String) {
        guard queue.count < capacity else {
            unreportedDrops[source, default: 0] += 1
            totalDrops += 1
            return
        }
        queue.prepend((source, message))
    }

    /// The unreported drops, cleared.
    public mutating func takeDropReport() -> [String: Int] {
        defer { unreportedDrops = [:] }
        return unreportedDrops
    }

    /// Empties the queue (the sink is closing without a server); returns what it held per
    /// source. These count as drops too.
    public mutating func dropAll() -> [String: Int] {
        var left: [String: Int] = [:]
        for entry in queue { left[entry.source, default: 0] += 1 }
        for (source, count) in left { unreportedDrops[source, default: 0] += count }
        totalDrops += queue.count
        queue.removeAll()
        return left
    }
}
