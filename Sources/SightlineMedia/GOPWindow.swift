/// The compressed packets a file source has sent to its decoder since the keyframe before the
/// last one, so that frames the decoder skipped (non-reference frames under `mode: nonref`) can
/// be decoded again when a cut may lie among them. Two groups of pictures, because a cut that an
/// encoder put on a keyframe has the skipped frames just before it, in the group before.
///
/// Pure bookkeeping over any element (the source stores owned packet references; tests store
/// numbers). Bounded by bytes and by count: past either bound the oldest packets go, and a hole
/// whose keyframe went with them can no longer be decoded again (`replay` says nil).
public struct GOPWindow<Element> {
    public struct Entry {
        public let element: Element
        /// Presentation timestamp, nil when the container gives none.
        public let pts: Int64?
        public let isKey: Bool
        public let bytes: Int
    }

    /// Defaults: two groups of pictures of 720p at 5 Mbit/s with 10 s between keyframes take
    /// about 12 MB and 600 packets.
    public static var defaultMaxBytes: Int { 64 << 20 }
    public static var defaultMaxCount: Int { 2048 }

    public private(set) var entries: [Entry] = []
    public private(set) var bytes = 0
    public let maxBytes: Int
    public let maxCount: Int
    /// Packets that went because of the bounds rather than a newer keyframe.
    public private(set) var evictedByBounds = 0

    public init(maxBytes: Int = defaultMaxBytes, maxCount: Int = defaultMaxCount) {
        self.maxBytes = max(maxBytes, 1)
        self.maxCount = max(maxCount, 1)
    }

    public mutating func append(_ element: Element, pts: Int64?, isKey: Bool, bytes size: Int) {
        if isKey {
            // Keep the group that is ending (the one before the new keyframe) and start a new one.
            let keys = entries.indices.filter { entries[$0].isKey }
            if keys.count >= 2, let previous = keys.last { drop(first: previous) }
        }
        entries.append(Entry(element: element, pts: pts, isKey: isKey, bytes: max(size, 0)))
        bytes += max(size, 0)
        var over = 0
        while entries.count - over > maxCount || (bytes > maxBytes && entries.count - over > 1) {
            bytes -= entries[over].bytes
            over += 1
        }
        if over > 0 {
            entries.removeFirst(over)
            evictedByBounds += over
        }
    }

    /// The packets to decode again for frames shown after `pts`: from the last keyframe at or
    /// before it to the newest packet, in decode order. Nil when no such keyframe is held.
    public func replay(after pts: Int64) -> ArraySlice<Entry>? {
        guard let start = entries.lastIndex(where: { $0.isKey && ($0.pts ?? .max) <= pts }) else { return nil }
        return entries[start...]
    }

    /// How many held packets show a frame strictly between `from` and `to`.
    public func count(between from: Int64, and to: Int64) -> Int {
        entries.reduce(0) { count, entry in
            guard let pts = entry.pts, pts > from, pts < to else { return count }
            return count + 1
        }
    }

    public mutating func removeAll() {
        entries.removeAll()
        bytes = 0
    }

    private mutating func drop(first count: Int) {
        guard count > 0 else { return }
        bytes -= entries[..<count].reduce(0) { $0 + $1.bytes }
        entries.removeFirst(count)
    }
}

/// Whether skipping non-reference frames still pays for a file: the frames decoded again for
/// holes with a possible cut must stay within the frames skipped. Encoders that put a keyframe
/// on every cut (x264's scenecut) need no hole decoded again; a long fixed group of pictures
/// with cuts inside needs the frames from its keyframe each time, and then a full decode is
/// cheaper.
public enum NonrefSkipping {
    public static func pays(skipped: Int, redecoded: Int) -> Bool { redecoded <= skipped }
}
