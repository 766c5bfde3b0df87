/// Where a result came from: a model (or algorithm) by name, version and content hash.
public struct Provenance: Sendable, Equatable, Hashable {
    public var name: String
    public var version: String
    public var sha256: String?

    public init(name: String, version: String, sha256: String? = nil) {
        self.name = name
        self.version = version
        self.sha256 = sha256
    }

    public var json: JSONValue {
        var fields: [String: JSONValue] = ["name": .string(name), "version": .string(version)]
        if let sha256 { fields["sha256"] = .string(sha256) }
        return .object(fields)
    }
}

/// A result a node produced about a span of one source's media time; sinks publish it.
/// `kind` becomes the topic's first part (`stats`, `phash`, later `captions`, `moderation`, …).
public struct Record: Sendable, Equatable {
    public var kind: String
    public var sourceID: String
    /// Media-time span in seconds on the source's output timeline.
    public var start: Double
    public var end: Double
    public var fields: [String: JSONValue]
    /// Optional vector payload (embeddings), published as a binary frame.
    public var vector: [Float]?
    /// Ingest wall-clock time of the newest frame behind this record, for latency.
    public var ingestWallClock: Double?
    public var provenance: [Provenance]

    public init(
        kind: String, sourceID: String, start: Double, end: Double, fields: [String: JSONValue] = [:],
        vector: [Float]? = nil, ingestWallClock: Double? = nil, provenance: [Provenance] = []
    ) {
        self.kind = kind
        self.sourceID = sourceID
        self.start = start
        self.end = end
        self.fields = fields
        self.vector = vector
        self.ingestWallClock = ingestWallClock
        self.provenance = provenance
    }
}

/// Something every subscriber of a source should hear about: lifecycle, trouble, counters.
public struct StatusEvent: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case started, gap, reconnecting, drops, error, heartbeat
        /// Sparse computation: tiles computed (region selector) and work saved (delta models).
        case regions, delta
        case endOfStream = "end_of_stream"
    }

    public var kind: Kind
    /// nil for pipeline-wide events (heartbeat).
    public var sourceID: String?
    public var fields: [String: JSONValue]
    public var wallClock: Double

    public init(kind: Kind, sourceID: String?, fields: [String: JSONValue] = [:], wallClock: Double) {
        self.kind = kind
        self.sourceID = sourceID
        self.fields = fields
        self.wallClock = wallClock
    }
}

/// Source ids. A batch source names each of its files `NODE/FILE`, so topics read
/// `KIND/NODE/FILE/`, a subscriber can take a whole batch with `KIND/NODE/`, and each file
/// is a source of its own (its own end-of-stream, its own per-source state in every node).
public enum SourceName {
    /// The node a source id belongs to: the part before the first "/".
    public static func root(_ id: String) -> String {
        guard let slash = id.firstIndex(of: "/") else { return id }
        return String(id[..<slash])
    }
}
