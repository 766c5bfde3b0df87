import SightlineCore

/// What each source of a service is doing, from the status events the graph posts and frame
/// counts sampled once a second: a pure state machine (the HTTP API reads it, tests drive it
/// with timelines).
public struct SourceStatusBoard: Sendable {
    public enum State: String, Sendable, Codable {
        /// Added, not opened yet.
        case starting
        case connected
        /// Lost its data; trying again.
        case reconnecting
        /// Asked to stop; its end-of-stream is on the way.
        case removing
        case ended
        case failed
    }

    public struct Entry: Sendable, Equatable {
        public var id: String
        public var url: String
        public var state: State
        /// Time without data: finished outages plus the current one.
        public var gapSeconds: Double
        /// Outages it came back from.
        public var reconnects: Int
        /// Frames per second into the graph over the last sample.
        public var fps: Double
        public var framesIn: Int
        public var error: String?
        var outageStartedAt: Double?
    }

    private var entries: [String: Entry] = [:]
    private var order: [String] = []
    private var lastSample: (time: Double, frames: [String: Int])?
    /// Ended sources stay listed (what became of them) up to this many.
    private let keepEnded: Int

    public init(keepEnded: Int = 100) {
        self.keepEnded = keepEnded
    }

    public mutating func added(id: String, url: String) {
        if entries[id] == nil { order.append(id) }
        entries[id] = Entry(id: id, url: url, state: .starting, gapSeconds: 0, reconnects: 0, fps: 0, framesIn: 0)
        trimEnded()
    }

    public mutating func removing(id: String) {
        guard var entry = entries[id], entry.state != .ended, entry.state != .failed else { return }
        entry.state = .removing
        entries[id] = entry
    }

    public mutating func apply(_ event: StatusEvent, now: Double) {
        guard let id = event.sourceID, var entry = entries[id] else { return }
        switch event.detail {
        case .started:
            if entry.state != .removing { entry.state = .connected }
        case .reconnecting:
            if entry.state != .removing { entry.state = .reconnecting }
            if entry.outageStartedAt == nil { entry.outageStartedAt = now }
        case .gap(_, let duration):
            if entry.state != .removing { entry.state = .connected }
            entry.gapSeconds += duration
            entry.reconnects += 1
            entry.outageStartedAt = nil
        case .error(let failure) where failure.fatal:
            entry.error = failure.message
        case .endOfStream(let eos, _):
            // A removal is a normal end, whatever the stop interrupted.
            if let error = eos.error, entry.error == nil { entry.error = error }
            entry.state = entry.state == .removing || entry.error == nil ? .ended : .failed
            entry.outageStartedAt = nil
            entry.fps = 0
        default:
            return
        }
        entries[id] = entry
    }

    /// Frame counts per source (cumulative), sampled now: the rate since the last sample.
    public mutating func sample(framesIn: [String: Int], now: Double) {
        if let last = lastSample, now - last.time > 0 {
            for (id, frames) in framesIn {
                guard var entry = entries[id] else { continue }
                entry.framesIn = frames
                if entry.state != .ended && entry.state != .failed {
                    entry.fps = Double(frames - (last.frames[id] ?? 0)) / (now - last.time)
                }
                entries[id] = entry
            }
        }
        lastSample = (now, framesIn)
    }

    /// Every source in the order added; gaps include an outage still going on.
    public func list(now: Double) -> [Entry] {
        order.compactMap { entries[$0] }.map { entry in
            var entry = entry
            if let started = entry.outageStartedAt { entry.gapSeconds += max(0, now - started) }
            return entry
        }
    }

    public func entry(_ id: String, now: Double) -> Entry? { list(now: now).first { $0.id == id } }

    private mutating func trimEnded() {
        let ended = order.filter { entries[$0].map { $0.state == .ended || $0.state == .failed } ?? false }
        guard ended.count > keepEnded else { return }
        for id in ended.prefix(ended.count - keepEnded) {
            entries[id] = nil
            order.removeAll { $0 == id }
        }
    }
}
