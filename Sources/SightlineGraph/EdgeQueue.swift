import DequeModule
import Foundation
import SightlineCore

/// A bounded FIFO between two nodes with a policy for when it is full. Only frames count
/// against the capacity and only frames are ever dropped: records, status and end-of-stream
/// are small and always delivered. Every drop is counted per source.
final class EdgeQueue: @unchecked Sendable {
    let from: String
    let to: String
    let policy: EdgePolicy
    let capacity: Int
    private let metrics: GraphMetrics
    private let condition = NSCondition()
    private var items = Deque<Item>()
    private var frameCount = 0
    private var flushing = false
    /// Producers blocked on a full edge; pops only signal when someone waits (a futex wake
    /// per frame would dominate the cost of a cheap node).
    private var waiters = 0
    private(set) var drops = 0
    /// What went through (for metrics), counted under the lock the push takes anyway.
    private var framesPushed = 0
    private var recordsPushed = 0
    /// Set once when the graph is wired; the runner that consumes this queue.
    unowned(unsafe) var consumer: NodeRunner!

    init(from: String, to: String, policy: EdgePolicy, capacity: Int, metrics: GraphMetrics) {
        self.from = from
        self.to = to
        self.policy = policy
        self.capacity = capacity
        self.metrics = metrics
    }

    /// Adds an item. A full `block` edge makes the caller wait (`executor.waitForRoom` decides
    /// how: a condition variable, or running the consumer in the single-threaded harness).
    ///
    /// `waker`, when given, collects the consumer to wake later (a node's drain wakes each
    /// downstream once per batch instead of once per item: on two cores, a cross-thread wake
    /// per item costs more than a cheap node's work).
    func push(_ item: Item, executor: Executor, waker: NodeRunner? = nil) -> FlowResult {
        var result = FlowResult.ok
        condition.lock()
        while true {
            guard case .frame(let frame) = item else { break }
            if flushing {
                condition.unlock()
                return .flushing
            }
            if frameCount < capacity { break }
            switch policy {
            case .dropNewest:
                drops += 1
                condition.unlock()
                metrics.dropped(source: frame.sourceID)
                return .dropped
            case .dropOldest:
                if let index = items.firstIndex(where: { if case .frame = $0 { true } else { false } }) {
                    let victim = items.remove(at: index)
                    frameCount -= 1
                    drops += 1
                    metrics.dropped(source: victim.sourceID ?? frame.sourceID)
                    result = .ok
                }
            case .block:
                if executor.isSynchronous {
                    condition.unlock()
                    executor.makeRoom(in: self)
                    condition.lock()
                } else {
                    // The consumer must be running to make room, whatever was deferred.
                    condition.unlock()
                    executor.schedule(consumer)
                    condition.lock()
                    if frameCount < capacity || flushing { continue }
                    waiters += 1
                    condition.wait()
                    waiters -= 1
                }
                continue
            }
        }
        switch item {
        case .frame:
            frameCount += 1
            framesPushed += 1
        case .record: recordsPushed += 1
        default: break
        }
        items.append(item)
        condition.unlock()
        if let waker, !executor.isSynchronous {
            waker.deferWake(consumer)
        } else {
            executor.schedule(consumer)
        }
        return result
    }

    func pop() -> Item? {
        condition.lock()
        defer { condition.unlock() }
        guard let item = items.popFirst() else { return nil }
        if case .frame = item {
            frameCount -= 1
            if waiters > 0 { condition.signal() }
        }
        return item
    }

    var isEmpty: Bool {
        condition.lock()
        defer { condition.unlock() }
        return items.isEmpty
    }

    var count: Int {
        condition.lock()
        defer { condition.unlock() }
        return items.count
    }

    var stats: EdgeStats {
        condition.lock()
        defer { condition.unlock() }
        return EdgeStats(from: from, to: to, depth: items.count, frames: framesPushed, records: recordsPushed, dropped: drops)
    }

    /// Shutdown past its deadline: queued frames are discarded (and counted), producers stop
    /// waiting, and from now on frames are refused. Everything else still flows.
    func beginFlushing() {
        condition.lock()
        flushing = true
        var kept = Deque<Item>()
        for item in items {
            if case .frame(let frame) = item {
                drops += 1
                metrics.dropped(source: frame.sourceID)
            } else {
                kept.append(item)
            }
        }
        items = kept
        frameCount = 0
        condition.broadcast()
        condition.unlock()
    }
}

/// One logical output of a node towards one downstream node. A downstream node running
/// several lanes gets one queue per lane; items go to a lane chosen by source id, so a
/// source's items never overtake each other. End-of-stream goes to every lane.
final class OutputPort: @unchecked Sendable {
    let lanes: [EdgeQueue]

    init(lanes: [EdgeQueue]) {
        self.lanes = lanes
    }

    ///
    /// `waker`, when given, collects the consumer to wake later (a node's drain wakes each
    /// downstream once per batch instead of once per item: on two cores, a cross-thread wake
    /// per item costs more than a cheap node's work).
    func push(_ item: Item, executor: Executor, waker: NodeRunner? = nil) -> FlowResult {
        if lanes.count == 1 { return lanes[0].push(item, executor: executor) }
        if case .endOfStream = item {
            for lane in lanes { _ = lane.push(item, executor: executor) }
            return .ok
        }
        return lanes[Self.lane(for: item.sourceID ?? "", count: lanes.count)].push(item, executor: executor)
    }

    /// FNV-1a: stable across runs (Swift's Hasher is seeded per process).
    static func lane(for source: String, count: Int) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in source.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return Int(hash % UInt64(count))
    }
}

/// One edge queue's counters (a node with several lanes has a queue per lane).
public struct EdgeStats: Sendable, Equatable {
    public var from: String
    /// The consuming node (its lane label, `node#2`, for concurrent nodes).
    public var to: String
    public var depth: Int
    public var frames: Int
    public var records: Int
    public var dropped: Int

    /// The consuming node's id.
    public var toNode: String { String(to.split(separator: "#").first ?? Substring(to)) }
}
