/// Which cameras one worker should take or give up, from what it sees in the key-value store:
/// a pure function, so balancing and failover are tested as timelines without a server.
///
/// Each camera is held by at most one worker through a lease key with a TTL; a worker that dies
/// stops renewing, its keys expire, and the others take the cameras. Workers balance by count:
/// each aims at its fair share, ceil(cameras / live workers), never above `maxPerWorker`.
public struct LeasePlanner: Sendable, Equatable {
    public var maxPerWorker: Int

    public init(maxPerWorker: Int) { self.maxPerWorker = max(1, maxPerWorker) }

    public struct View: Sendable, Equatable {
        /// Every camera that should run.
        public var cameras: Set<String>
        /// Camera → the worker holding its lease (live leases only).
        public var leases: [String: String]
        /// Workers with a fresh heartbeat, this one included.
        public var liveWorkers: Set<String>
        public var me: String

        public init(cameras: Set<String>, leases: [String: String], liveWorkers: Set<String>, me: String) {
            self.cameras = cameras
            self.leases = leases
            self.liveWorkers = liveWorkers
            self.me = me
        }
    }

    public enum Action: Sendable, Equatable {
        case acquire(String)
        case release(String)
    }

    public func fairShare(_ view: View) -> Int {
        let workers = max(1, view.liveWorkers.union([view.me]).count)
        return min(maxPerWorker, (view.cameras.count + workers - 1) / workers)
    }

    public func plan(_ view: View) -> [Action] {
        let mine = view.leases.filter { $0.value == view.me }.map(\.key)
        // Removed cameras stop at once.
        var actions = mine.filter { !view.cameras.contains($0) }.sorted().map(Action.release)
        let kept = mine.filter { view.cameras.contains($0) }.sorted()
        let share = fairShare(view)
        if kept.count > share {
            // One at a time, so a new worker is filled gradually and nobody thrashes.
            actions.append(.release(kept[kept.count - 1]))
        } else if kept.count < share {
            let free = view.cameras.filter { view.leases[$0] == nil }.sorted()
            actions += free.prefix(share - kept.count).map(Action.acquire)
        }
        return actions
    }
}
