/// Keeps a bounded, evenly spread set of a shot's frames so that, when the shot ends, the
/// frame nearest its middle can become its thumbnail. A pure state machine: no pixels are
/// touched here; the owner stores whatever payload it likes (a downscaled frame).
///
/// Memory stays bounded however long a shot runs (a fixed camera can hold one shot for
/// hours): when `capacity` frames are kept, every second one is dropped and the spacing
/// between accepted frames doubles, so the kept frames still cover the whole shot evenly.
struct RepresentativeFrames<Payload> {
    let capacity: Int
    private(set) var kept: [(time: Double, payload: Payload)] = []
    /// Minimum media seconds between kept frames; 0 keeps every frame offered.
    private(set) var spacing: Double = 0

    init(capacity: Int = 16) {
        self.capacity = max(2, capacity)
    }

    /// Whether a frame at `time` would be kept: callers ask first and skip preparing the
    /// payload (downscaling) for frames that would be dropped.
    func wants(_ time: Double) -> Bool {
        guard let last = kept.last else { return true }
        return time >= last.time + spacing && time > last.time
    }

    mutating func offer(_ time: Double, _ payload: Payload) {
        guard wants(time) else { return }
        kept.append((time, payload))
        if kept.count > capacity {
            kept = kept.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
            let span = (kept.last?.time ?? 0) - (kept.first?.time ?? 0)
            spacing = max(spacing * 2, span / Double(max(1, kept.count - 1)))
        }
    }

    /// The shot `[start, end]` has ended: returns the kept frame nearest its middle (nil if
    /// none fell inside it) and forgets every frame before `end`, which belong to it or to
    /// earlier shots. Frames at or after `end` start the next shot; spacing starts afresh.
    mutating func choose(start: Double, end: Double) -> (time: Double, payload: Payload)? {
        let middle = (start + end) / 2
        var inside = kept.filter { $0.time >= start - 1e-9 && $0.time < end - 1e-9 }
        if inside.isEmpty { inside = kept.filter { $0.time >= start - 1e-9 && $0.time <= end + 1e-9 } }  // a zero-length shot
        let best = inside.min { abs($0.time - middle) < abs($1.time - middle) }
        kept.removeAll { $0.time < end - 1e-9 }
        spacing = 0
        return best
    }

    mutating func reset() {
        kept = []
        spacing = 0
    }
}
