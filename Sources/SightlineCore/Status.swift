/// Something every subscriber of a source should hear about: lifecycle, trouble, counters.
/// Published on `status/SOURCE/` (`status/_pipeline/` for pipeline-wide events) by the sinks;
/// each detail below is one `data.event` of Docs/bus.md.
public struct StatusEvent: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case started, gap, reconnecting, drops, error, heartbeat
        /// Sparse computation: tiles computed (region selector) and work saved (delta models).
        case regions, delta
        case endOfStream = "end_of_stream"
    }

    public enum Detail: Sendable, Codable, Equatable {
        /// A source opened (the first time; a reconnect reports `gap`).
        case started(SourceOpened)
        /// A batch (`files`) source's plan, before its first file.
        case batchStarted(BatchPlan)
        case reconnecting(attempt: Int, delay: Double, reason: String)
        /// A live source got data again after `duration` seconds without; `afterSeconds` is the
        /// media time of the last frame before the loss.
        case gap(afterSeconds: Double, duration: Double)
        case drops(SourceCounters)
        case error(NodeFailure)
        case heartbeat(Heartbeat)
        case regions(RegionsSummary)
        case delta(DeltaSummary)
        /// The last message of a source: its own counters and the graph's.
        case endOfStream(EndOfStream, SourceCounters)
    }

    /// nil for pipeline-wide events (heartbeat).
    public var sourceID: String?
    public var detail: Detail
    public var wallClock: Double

    public init(_ detail: Detail, sourceID: String?, wallClock: Double) {
        self.detail = detail
        self.sourceID = sourceID
        self.wallClock = wallClock
    }

    public var kind: Kind {
        switch detail {
        case .started, .batchStarted: .started
        case .reconnecting: .reconnecting
        case .gap: .gap
        case .drops: .drops
        case .error: .error
        case .heartbeat: .heartbeat
        case .regions: .regions
        case .delta: .delta
        case .endOfStream: .endOfStream
        }
    }
}

/// What a source found when it first opened.
public struct SourceOpened: Sendable, Codable, Equatable {
    public var url: String
    public var container: String
    public var codec: String
    public var width: Int
    public var height: Int
    /// sha256 of a local file's bytes (a live stream has no fixed content).
    public var sha256: String?
    /// For one file of a batch source.
    public var batchFile: BatchFile?

    public init(url: String, container: String, codec: String, width: Int, height: Int, sha256: String? = nil, batchFile: BatchFile? = nil) {
        self.url = url
        self.container = container
        self.codec = codec
        self.width = width
        self.height = height
        self.sha256 = sha256
        self.batchFile = batchFile
    }
}

/// One file of a batch: where it is, its place in the run, and what identifies its content for
/// resuming (size and modification time).
public struct BatchFile: Sendable, Codable, Equatable {
    public var path: String
    /// 1-based position among the files this run processes.
    public var index: Int
    public var count: Int
    public var size: Int64?
    public var mtime: Double?

    public init(path: String, index: Int, count: Int, size: Int64?, mtime: Double?) {
        self.path = path
        self.index = index
        self.count = count
        self.size = size
        self.mtime = mtime
    }
}

/// A batch source's plan: every input file, and whether this run skips it (done before).
public struct BatchPlan: Sendable, Codable, Equatable {
    public struct Entry: Sendable, Codable, Equatable {
        public var source: String
        public var path: String
        public var skip: Bool
        /// Media duration in seconds, when it could be probed (skipped files are not).
        public var duration: Double?

        public init(source: String, path: String, skip: Bool, duration: Double?) {
            self.source = source
            self.path = path
            self.skip = skip
            self.duration = duration
        }
    }

    public var entries: [Entry]

    public init(entries: [Entry]) {
        self.entries = entries
    }

    public var toProcess: Int { entries.filter { !$0.skip }.count }
}

/// A node failed on an item, or a source failed for good.
public struct NodeFailure: Sendable, Codable, Equatable {
    public var node: String
    public var message: String
    /// The source is over (the pipeline goes on with the others).
    public var fatal: Bool
    /// Failures of this node so far (posting is limited to one per second per node).
    public var errorsSoFar: Int?
    /// The batch file that failed.
    public var path: String?

    public init(node: String, message: String, fatal: Bool = false, errorsSoFar: Int? = nil, path: String? = nil) {
        self.node = node
        self.message = message
        self.fatal = fatal
        self.errorsSoFar = errorsSoFar
        self.path = path
    }
}

/// What the graph counted for one source.
public struct SourceCounters: Sendable, Codable, Equatable {
    public var framesIn: Int
    /// Frames a drop-oldest / drop-newest edge discarded.
    public var droppedInGraph: Int
    /// Messages a full subscriber could not take.
    public var droppedAtSink: Int

    public init(framesIn: Int = 0, droppedInGraph: Int = 0, droppedAtSink: Int = 0) {
        self.framesIn = framesIn
        self.droppedInGraph = droppedInGraph
        self.droppedAtSink = droppedAtSink
    }
}

/// The pipeline's pulse: throughput, latency, queue depth and per-node cost.
public struct Heartbeat: Sendable, Codable, Equatable {
    public struct SourceRate: Sendable, Codable, Equatable {
        public var framesIn: Int
        public var fps: Double
        public var droppedInGraph: Int
        public var droppedAtSink: Int

        public init(framesIn: Int, fps: Double, droppedInGraph: Int, droppedAtSink: Int) {
            self.framesIn = framesIn
            self.fps = fps
            self.droppedInGraph = droppedInGraph
            self.droppedAtSink = droppedAtSink
        }
    }

    public struct NodeCost: Sendable, Codable, Equatable {
        public var items: Int
        public var errors: Int
        public var busySecondsPerItem: Double

        public init(items: Int, errors: Int, busySecondsPerItem: Double) {
            self.items = items
            self.errors = errors
            self.busySecondsPerItem = busySecondsPerItem
        }
    }

    public var uptime: Double
    public var queued: Int
    /// Frame-ingest-to-publish latency percentiles in seconds, once anything was published.
    public var latencyP50: Double?
    public var latencyP99: Double?
    public var sources: [String: SourceRate]
    public var nodes: [String: NodeCost]

    public init(uptime: Double, queued: Int, latencyP50: Double?, latencyP99: Double?, sources: [String: SourceRate], nodes: [String: NodeCost]) {
        self.uptime = uptime
        self.queued = queued
        self.latencyP50 = latencyP50
        self.latencyP99 = latencyP99
        self.sources = sources
        self.nodes = nodes
    }
}

/// A `regions` node's running totals for one source.
public struct RegionsSummary: Sendable, Codable, Equatable {
    public var frames: Int
    public var skipped: Int
    /// Mean fraction of tiles computed per frame.
    public var tilesComputedFraction: Double

    public init(frames: Int, skipped: Int, tilesComputedFraction: Double) {
        self.frames = frames
        self.skipped = skipped
        self.tilesComputedFraction = tilesComputedFraction
    }
}

/// A delta model node's running totals for one source.
public struct DeltaSummary: Sendable, Codable, Equatable {
    public var node: String
    public var frames: Int
    public var reused: Int
    /// Fraction of the convolutions' multiply-accumulates not done.
    public var workSaved: Double
    public var modelSeconds: Double

    public init(node: String, frames: Int, reused: Int, workSaved: Double, modelSeconds: Double) {
        self.node = node
        self.frames = frames
        self.reused = reused
        self.workSaved = workSaved
        self.modelSeconds = modelSeconds
    }
}

/// What a decoder counted over a source's life: everything it skipped, dropped or failed on
/// (nothing is lost silently). SightlineMedia fills it; an end-of-stream carries it.
public struct SourceStats: Sendable, Equatable, Codable {
    public var packetsRead = 0
    /// Packets never sent to the decoder: non-key packets in keyframes mode, and in sampled
    /// mode those after the last kept frame before the next keyframe.
    public var packetsSkipped = 0
    /// Sampled mode: kept frames that came later than the sampling asked, because a keyframe
    /// came later than its steady interval predicted (the packets before it were skipped).
    public var samplesDelayed = 0
    /// Packets flagged corrupt by the demuxer or rejected by the decoder.
    public var corruptPackets = 0
    /// Frames the decoder flagged as damaged (dropped unless keepCorruptFrames).
    public var corruptFrames = 0
    public var readErrors = 0
    public var framesDecoded = 0
    /// Frames the sampler passed over (never converted).
    public var framesSampledOut = 0
    public var framesEmitted = 0
    /// Adaptive sampling: kept frames by reason (first, cut, change, gap, tail).
    public var framesKeptBy: [String: Int] = [:]
    public var reconnects = 0
    public var gapSeconds = 0.0
    /// `mode: nonref` under shot-aware sampling: holes of skipped frames decoded again because
    /// a cut may lie in them, and the reference frames decoded a second time for that (the
    /// holes' own frames count in `framesDecoded`: decoder work is the sum of the two).
    public var holesRedecoded = 0
    public var framesRedecoded = 0
    /// Such holes that could not be decoded again (their packets were past the window's bounds):
    /// a cut there lands on the decoded frame after the hole.
    public var holesNotRedecoded = 0
    /// Frames `mode: nonref` skipped in the holes the sampler saw, and where (media seconds) it
    /// went back to decoding every frame because decoding holes again cost more than skipping
    /// saved (long groups of pictures with cuts inside them). `mode: sampled` sets the same
    /// place when a damaged frame after skipped packets switched its skipping off.
    public var framesSkipped = 0
    public var skippingStoppedAt: Double?
    public init() {}

    private enum CodingKeys: String, CodingKey {
        case packetsRead, packetsSkipped, corruptPackets, corruptFrames, readErrors, framesDecoded, framesSampledOut,
             framesEmitted, framesKeptBy, reconnects, gapSeconds, holesRedecoded, framesRedecoded, holesNotRedecoded,
             framesSkipped, skippingStoppedAt, samplesDelayed
    }

    /// The hole counters came later: a peer that predates them sends none.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        packetsRead = try c.decode(Int.self, forKey: .packetsRead)
        packetsSkipped = try c.decode(Int.self, forKey: .packetsSkipped)
        corruptPackets = try c.decode(Int.self, forKey: .corruptPackets)
        corruptFrames = try c.decode(Int.self, forKey: .corruptFrames)
        readErrors = try c.decode(Int.self, forKey: .readErrors)
        framesDecoded = try c.decode(Int.self, forKey: .framesDecoded)
        framesSampledOut = try c.decode(Int.self, forKey: .framesSampledOut)
        framesEmitted = try c.decode(Int.self, forKey: .framesEmitted)
        framesKeptBy = try c.decode([String: Int].self, forKey: .framesKeptBy)
        reconnects = try c.decode(Int.self, forKey: .reconnects)
        gapSeconds = try c.decode(Double.self, forKey: .gapSeconds)
        holesRedecoded = try c.decodeIfPresent(Int.self, forKey: .holesRedecoded) ?? 0
        framesRedecoded = try c.decodeIfPresent(Int.self, forKey: .framesRedecoded) ?? 0
        holesNotRedecoded = try c.decodeIfPresent(Int.self, forKey: .holesNotRedecoded) ?? 0
        framesSkipped = try c.decodeIfPresent(Int.self, forKey: .framesSkipped) ?? 0
        skippingStoppedAt = try c.decodeIfPresent(Double.self, forKey: .skippingStoppedAt)
        samplesDelayed = try c.decodeIfPresent(Int.self, forKey: .samplesDelayed) ?? 0
    }
}

/// A batch source's totals at its end.
public struct BatchTotals: Sendable, Codable, Equatable {
    public var files: Int
    public var processed: Int
    public var failed: Int
    public var skipped: Int

    public init(files: Int, processed: Int, failed: Int, skipped: Int) {
        self.files = files
        self.processed = processed
        self.failed = failed
        self.skipped = skipped
    }
}

/// The last item of a source on an edge, with what the source knows about how it ended.
/// Several branches of a fan-in each deliver one; `merging` keeps whatever either knows.
public struct EndOfStream: Sendable, Codable, Equatable {
    public var sourceID: String
    public var decoder: SourceStats?
    /// One file of a batch source: which, and its content's sha256.
    public var batchFile: BatchFile?
    public var sha256: String?
    /// A batch source's own end.
    public var batch: BatchTotals?
    /// Read to its end (false: cancelled or failed; a batch file then stays to be redone).
    public var completed: Bool?
    public var error: String?
    /// Frames a test source emitted (the harness's synthetic source).
    public var frames: Int?

    public init(sourceID: String, decoder: SourceStats? = nil, batchFile: BatchFile? = nil, sha256: String? = nil,
                batch: BatchTotals? = nil, completed: Bool? = nil, error: String? = nil, frames: Int? = nil) {
        self.sourceID = sourceID
        self.decoder = decoder
        self.batchFile = batchFile
        self.sha256 = sha256
        self.batch = batch
        self.completed = completed
        self.error = error
        self.frames = frames
    }

    /// Whether the source's media was read to its end: as stated, else when it did not fail.
    public var isComplete: Bool { completed ?? (error == nil) }

    /// Both ends' information, this one's first where both know something.
    public func merging(_ other: EndOfStream) -> EndOfStream {
        var merged = self
        merged.decoder = decoder ?? other.decoder
        merged.batchFile = batchFile ?? other.batchFile
        merged.sha256 = sha256 ?? other.sha256
        merged.batch = batch ?? other.batch
        merged.completed = completed ?? other.completed
        merged.error = error ?? other.error
        merged.frames = frames ?? other.frames
        return merged
    }
}
