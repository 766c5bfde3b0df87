/// Dynamic batching as a pure state machine (Triton's dynamic batcher, on the graph's clock):
/// items queue in arrival order; the batch is released when it holds `maxBatch` work items or
/// when the oldest work item has waited `maxWait` seconds, whichever comes first. Non-work
/// items (records passing through) wait in place so nothing overtakes anything.
public struct DynamicBatcher<Element> {
    public let maxBatch: Int
    public let maxWait: Double
    public private(set) var pending: [Element] = []
    public private(set) var workCount = 0
    /// When the batch must be released even if it is not full; nil when no work is waiting.
    public private(set) var deadline: Double?

    public init(maxBatch: Int, maxWait: Double) {
        precondition(maxBatch >= 1 && maxWait >= 0)
        self.maxBatch = maxBatch
        self.maxWait = maxWait
    }

    public var isEmpty: Bool { pending.isEmpty }

    /// Queues an item; true when the batch is now due (full, or no waiting allowed).
    public mutating func add(_ element: Element, isWork: Bool, now: Double) -> Bool {
        pending.append(element)
        guard isWork else { return isDue(now: now) }
        workCount += 1
        if deadline == nil { deadline = now + maxWait }
        return isDue(now: now)
    }

    /// Whether the batch should be released at `now`.
    public func isDue(now: Double) -> Bool {
        guard workCount > 0 else { return false }
        if workCount >= maxBatch { return true }
        return deadline.map { now >= $0 } ?? false
    }

    /// Everything queued, in arrival order; the batcher starts empty again.
    public mutating func take() -> [Element] {
        defer {
            pending.removeAll(keepingCapacity: true)
            workCount = 0
            deadline = nil
        }
        return pending
    }
}
