import SightlineCore

/// Settings that only make sense for live sources (network streams that can drop out).
public struct LiveOptions: Sendable, Equatable {
    /// Seconds without data before a read gives up (FFmpeg `rw_timeout`; `timeout` would mean
    /// "listen" for RTMP, so it is never used).
    public var readTimeout: Double
    /// Seconds allowed for connecting and probing the stream.
    public var openTimeout: Double
    public var reconnect: ReconnectBackoff.Policy
    /// Bytes and seconds FFmpeg may read to identify the stream; small means a fast start.
    public var probeSize: Int
    public var analyzeDuration: Double

    public init(
        readTimeout: Double = 3, openTimeout: Double = 5,
        reconnect: ReconnectBackoff.Policy = .init(),
        probeSize: Int = 500_000, analyzeDuration: Double = 0.5
    ) {
        self.readTimeout = readTimeout
        self.openTimeout = openTimeout
        self.reconnect = reconnect
        self.probeSize = probeSize
        self.analyzeDuration = analyzeDuration
    }

    /// AVOptions for a low-latency open: no demuxer buffering, a short probe, bounded reads.
    var avOptions: [String: String] {
        [
            "fflags": "nobuffer",
            "flags": "low_delay",
            "probesize": String(max(probeSize, 32)),
            "analyzeduration": String(Int(analyzeDuration * 1_000_000)),
            "rw_timeout": String(Int(readTimeout * 1_000_000)),
        ]
    }
}

/// Everything that decides how a source is read, decoded, sampled and converted.
public struct SourceOptions: Sendable, Equatable {
    public var sourceID: String
    public var mode: DecodeMode
    /// `fast`: no loop filter, and a reduced decode size where the codec has one (`DecodeQuality`).
    public var quality: DecodeQuality
    public var sampling: SamplingPolicy
    /// Decoder threads; 0 = one per core (FFmpeg's choice).
    public var threads: Int
    /// Conversion of kept frames; nil decodes without converting (frames carry no pixels).
    public var output: OutputFormat?
    /// Live behaviour (reconnect, low latency, monotonic time); nil for files and VOD.
    public var live: LiveOptions?
    /// Extra AVOptions for the demuxer/protocol, e.g. `rtsp_transport=tcp`.
    public var formatOptions: [String: String]
    /// Frames the decoder marks corrupt are dropped (and counted) unless this is set.
    public var keepCorruptFrames: Bool

    public init(
        sourceID: String = "source", mode: DecodeMode = .all, quality: DecodeQuality = .full, sampling: SamplingPolicy = .all,
        threads: Int = 0, output: OutputFormat? = OutputFormat(), live: LiveOptions? = nil,
        formatOptions: [String: String] = [:], keepCorruptFrames: Bool = false
    ) {
        self.sourceID = sourceID
        self.mode = mode
        self.quality = quality
        self.sampling = sampling
        self.threads = threads
        self.output = output
        self.live = live
        self.formatOptions = formatOptions
        self.keepCorruptFrames = keepCorruptFrames
    }

    /// Schemes whose sources are live by nature. HTTP(S)/HLS can be either, so they are treated
    /// as files unless the caller asks for live behaviour.
    public static func isLiveURL(_ url: String) -> Bool {
        guard let scheme = url.split(separator: ":", maxSplits: 1).first?.lowercased(), url.contains("://") else {
            return false
        }
        return ["rtsp", "rtsps", "rtmp", "rtmps", "rtmpt", "srt", "udp", "tcp", "rtp"].contains(scheme)
    }
}

/// What a source found when it opened (again).
public struct StreamInfo: Sendable, Equatable, Codable {
    public var url: String
    public var container: String
    public var codec: String
    public var width: Int
    public var height: Int
    public var pixelFormat: String
    public var timeBase: Rational
    public var averageFrameRate: Rational
    public var startSeconds: Double?
    public var durationSeconds: Double?
}

/// A gap in a live source: data stopped and resumed.
public struct SourceGap: Sendable, Equatable, Codable {
    /// Output-timeline seconds of the last frame before the loss.
    public var afterSeconds: Double
    /// Wall-clock seconds between the last frame before the loss and the first one after it.
    public var durationSeconds: Double
}

public enum SourceEvent: Sendable {
    case opened(StreamInfo)
    case frame(Frame)
    /// The source was lost (`reason`); attempt `attempt` follows after `delay` seconds.
    case reconnecting(attempt: Int, delay: Double, reason: String)
    case gap(SourceGap)
    case endOfStream(SourceStats)
}
