/// Counts messages a subscriber missed, from the per-topic `seq` numbers the publisher stamps.
/// The first message of a topic sets the start (a late joiner has not lost the earlier ones);
/// a seq at or below the last one means the publisher restarted, and counting starts again.
public struct SequenceGaps: Sendable {
    private var lastSeq: [String: Int64] = [:]
    public private(set) var lostByTopic: [String: Int64] = [:]

    public init() {}

    public var totalLost: Int64 { lostByTopic.values.reduce(0, +) }

    /// Returns how many messages were missed just before this one.
    @discardableResult
    public mutating func note(topic: String, seq: Int64) -> Int64 {
        defer { lastSeq[topic] = seq }
        guard let last = lastSeq[topic], seq > last + 1 else { return 0 }
        let lost = seq - last - 1
        lostByTopic[topic, default: 0] += lost
        return lost
    }
}
