import Foundation
import SightlineCore
import SightlineGraph
import SightlineMedia
import SightlineModels

/// `source`: decodes a file or live URL with SightlineMedia and emits sampled, converted frames.
/// Its node id is the source id that topics and messages carry.
public final class VideoSourceNode: SourceProcessor, @unchecked Sendable {
    public let sourceID: String
    private let source: VideoSource
    private let url: String
    private let cancellation: SourceCancellation
    private let audioTapID: String?

    public static let descriptor = NodeDescriptor(
        name: "source",
        description: "Decode a file or stream (file, http(s), HLS, RTSP, RTMP, SRT, UDP, TCP) into sampled RGB frames.",
        role: .source, inputs: nil, outputs: .frames,
        options: [OptionSpec("url", .media, required: true, help: "file path (relative to the pipeline's folder) or URL FFmpeg can open")] + decodeOptions + liveOptions)

    /// How frames are decoded, sampled and converted (shared with the `files` source).
    static let decodeOptions: [OptionSpec] = [
        OptionSpec("privacy", .choice(["share", "edge-only"]), default: .string("share"),
                   help: "edge-only: when the pipeline is split (`at: edge`, `sightline run --role edge`), this source's pixels never leave the edge; only its results, and frames a redact node hid faces in, cross to the core"),
        OptionSpec("mode", .choice(DecodeMode.allCases.map(\.rawValue)), default: .string("all"), help: "frames the codec decodes: all, keyframes, nonref (skips frames nothing references; with sampling: adaptive on a file, the skipped frames around a possible cut are decoded again so the cut stays on its exact frame), sampled (with fps: skips the packets after the last kept frame before the next keyframe once keyframes come at a steady interval, e.g. frames 16-29 of each second at fps 2 with a keyframe a second; live cameras without B-frames; otherwise decodes all)"),
        OptionSpec("quality", .choice(DecodeQuality.allCases.map(\.rawValue)), default: .string("full"),
                   help: "fast: no deblocking loop filter, FFmpeg's fast flag, and a half/quarter/eighth-size decode where the codec has one and size allows; for pipelines whose nodes want small frames (shots, frame_stats); pictures come out slightly blockier"),
        OptionSpec("fps", .rational, min: 0.0001, max: 1000, help: "keep N frames per second of media time (default: every frame)"),
        OptionSpec("every", .int, min: 1, max: 1_000_000, help: "keep every Nth decoded frame"),
        OptionSpec("sampling", .choice(["fixed", "adaptive"]), default: .string("fixed"),
                   help: "fixed: the frames fps/every choose; adaptive (shot-aware, files): the first frame of every cut on its exact frame, up to fps (default 2) frames/s where the picture changes, one frame per max_gap s where it holds still, and the last frame"),
        OptionSpec("max_gap", .double, default: .double(AdaptiveSampling.Defaults.maxGap), min: 0.05, max: 3600, help: "adaptive: a still shot still gets a frame this often (seconds)"),
        OptionSpec("change", .double, default: .double(AdaptiveSampling.Defaults.change), min: 0.001, max: 1, help: "adaptive: share of the picture changed since the last kept frame that asks for another"),
        OptionSpec("cut", .double, default: .double(AdaptiveSampling.Defaults.cut), min: 0.01, max: 1, help: "adaptive: picture change between two decoded frames (the shots node's measure) that keeps the frame as a cut; a shots node downstream starts shots only there, so this is the floor for its threshold"),
        OptionSpec("second_within", .double, default: .double(AdaptiveSampling.Defaults.second), min: 0.05, max: 3600, help: "adaptive: a shot's second frame comes at most this long after its first, so its motion (camera, people) can be told"),
        OptionSpec("threads", .int, default: .int(0), min: 0, max: 64, help: "decoder threads (0: one per core)"),
        OptionSpec("size", .size, help: "convert to WxH (Wx / xH keep aspect); default: source size"),
        OptionSpec("resize", .choice(ResizeMode.allCases.map(\.rawValue)), default: .string("stretch"), help: "how to fit size: stretch, letterbox, crop"),
        OptionSpec("pixel_format", .choice(PixelFormat.allCases.map(\.rawValue)), default: .string("rgb24"), help: "rgb24, bgr24 or gray8"),
    ]

    static let liveOptions: [OptionSpec] = [
        OptionSpec("live", .choice(["auto", "on", "off"]), default: .string("auto"), help: "live behaviour (reconnect, monotonic time); auto: by URL scheme"),
        OptionSpec("read_timeout", .double, default: .double(3), min: 0.05, max: 3600, help: "live: seconds without data before the source counts as lost"),
        OptionSpec("open_timeout", .double, default: .double(5), min: 0.05, max: 3600, help: "live: seconds to connect and probe"),
        OptionSpec("reconnect_attempts", .int, default: .int(10), min: 0, max: 1_000_000, help: "live: reconnect attempts after a loss"),
        OptionSpec("reconnect_delay", .double, default: .double(0.5), min: 0, max: 3600, help: "live: first reconnect delay (doubles)"),
        OptionSpec("reconnect_max_delay", .double, default: .double(8), min: 0, max: 3600, help: "live: longest reconnect delay (a refused connection is retried every 0.5 s in between)"),
    ]

    public static let factory = NodeFactory(descriptor: descriptor) { id, options in
        .source(try VideoSourceNode(id: id, options: options))
    }

    init(id: String, options: NodeOptions) throws {
        try Self.checkSampling(options)
        sourceID = id
        let url = options.string("url") ?? ""
        self.url = url
        let sourceOptions = Self.sourceOptions(sourceID: id, url: url, options: options)
        // A live stream's audio can only come from its own demuxer (a second connection would
        // cost the camera a second session, and a UDP stream cannot be received twice).
        let tap = sourceOptions.live != nil ? AudioTap() : nil
        audioTapID = tap.map(AudioTap.register)
        source = VideoSource(url: url, options: sourceOptions, audioTap: tap)
        cancellation = source.cancellation
    }

    deinit {
        if let audioTapID { AudioTap.unregister(audioTapID) }
    }

    /// Frame metadata naming a live source's `AudioTap` (in this process): `transcribe` asks it
    /// for the stream's audio.
    public static let audioTapKey = "sl.source.audio_tap"

    /// The decoder settings a node's options describe.
    /// Frame metadata naming the media the frame came from: nodes that read the same media
    /// again (the audio track for `transcribe`) find it here.
    public static let urlKey = "sl.source.url"

    /// `sampling: adaptive` takes its rate from `fps`; `every` counts frames and cannot say
    /// which ones matter, so the two do not combine.
    static func checkSampling(_ options: NodeOptions) throws {
        if options.string("sampling") == "adaptive", options.int("every") != nil {
            throw SightlineError.invalidOption(name: "every", value: "\(options.int("every") ?? 0)", hint: "sampling: adaptive takes its rate from fps; remove every")
        }
        if options.string("mode") == "sampled", options.string("fps") == nil || options.string("sampling") == "adaptive" {
            throw SightlineError.invalidOption(name: "mode", value: "sampled", hint: "mode: sampled skips what N-per-second sampling will not keep: set fps, with sampling: fixed")
        }
        if options.string("fps") != nil, options.int("every") != nil {
            throw SightlineError.invalidOption(name: "every", value: "\(options.int("every") ?? 0)", hint: "fps and every cannot be combined; choose one sampler")
        }
    }

    static func sourceOptions(sourceID id: String, url: String, options: NodeOptions) -> SourceOptions {
        let fps = options.string("fps").flatMap(Rational.init(parsing:))
        let sampling: SamplingPolicy =
            if options.string("sampling") == "adaptive" {
                .adaptive(AdaptiveSampling(maxRate: fps ?? AdaptiveSampling.Defaults.maxRate,
                                           maxGap: options.double("max_gap") ?? AdaptiveSampling.Defaults.maxGap,
                                           cut: Float(options.double("cut") ?? AdaptiveSampling.Defaults.cut),
                                           change: Float(options.double("change") ?? AdaptiveSampling.Defaults.change),
                                           second: options.double("second_within") ?? AdaptiveSampling.Defaults.second))
            }
            else if let fps { .perSecond(fps) }
            else if let every = options.int("every") { .everyNth(every) }
            else { .all }
        let size = options.string("size").flatMap(OptionSpec.parseSize)
        let liveSetting = options.string("live") ?? "auto"
        let isLive = liveSetting == "on" || (liveSetting == "auto" && SourceOptions.isLiveURL(url))
        return SourceOptions(
            sourceID: id,
            mode: DecodeMode(rawValue: options.string("mode") ?? "all") ?? .all,
            quality: DecodeQuality(rawValue: options.string("quality") ?? "full") ?? .full,
            sampling: sampling,
            threads: options.int("threads") ?? 0,
            output: OutputFormat(
                width: size?.width, height: size?.height,
                pixelFormat: PixelFormat(rawValue: options.string("pixel_format") ?? "rgb24") ?? .rgb24,
                resize: ResizeMode(rawValue: options.string("resize") ?? "stretch") ?? .stretch),
            live: isLive ? LiveOptions(
                readTimeout: options.double("read_timeout") ?? 3, openTimeout: options.double("open_timeout") ?? 5,
                reconnect: .init(maxAttempts: options.int("reconnect_attempts") ?? 10,
                                 initialDelay: options.double("reconnect_delay") ?? 0.5,
                                 maxDelay: max(options.double("reconnect_max_delay") ?? 8, options.double("reconnect_delay") ?? 0.5)))
                : nil)
    }
    public func cancel() { cancellation.cancel() }

    /// Provenance of the media: a local file's sha256 goes into its `started` status, and the
    /// sinks put `origin: {url, sha256}` on every message of the source. Live URLs have none.
    static func contentHash(_ url: String) -> String? {
        guard FileManager.default.fileExists(atPath: url) else { return nil }
        return try? ModelStore.sha256(ofFile: url)
    }

    public func run(context: any NodeContext, emit: (Item) -> FlowResult) throws -> EndOfStream {
        let final = try Self.pump(source, sourceID: sourceID, context: context, sha256: Self.contentHash(url), audioTapID: audioTapID, emit: emit)
        return EndOfStream(sourceID: sourceID, decoder: final)
    }

    /// Runs a decoder to its end: frames out, lifecycle and trouble to the status topic.
    static func pump(_ source: VideoSource, sourceID: String, context: any NodeContext, sha256: String?, batchFile: BatchFile? = nil,
                     audioTapID: String? = nil, emit: (Item) -> FlowResult) throws -> SourceStats {
        var started = false
        var final = SourceStats()
        var gapBefore: Double?
        var openedURL: String?
        while let event = try source.next() {
            switch event {
            case .opened(let info):
                openedURL = info.url
                if !started {
                    started = true
                    let opened = SourceOpened(url: info.url, container: info.container, codec: info.codec, width: info.width, height: info.height,
                                              sha256: sha256, batchFile: batchFile)
                    context.post(StatusEvent(.started(opened), sourceID: sourceID, wallClock: context.clock.now()))
                }
            case .frame(var frame):
                frame.gapBefore = gapBefore
                if let openedURL { frame.metadata[urlKey] = openedURL }
                if let audioTapID { frame.metadata[audioTapKey] = audioTapID }
                gapBefore = nil
                if emit(.frame(frame)) == .flushing { source.cancel() }
            case .reconnecting(let attempt, let delay, let reason):
                context.post(StatusEvent(.reconnecting(attempt: attempt, delay: delay, reason: reason), sourceID: sourceID,
                                         wallClock: context.clock.now()))
            case .gap(let gap):
                gapBefore = gap.durationSeconds
                context.post(StatusEvent(.gap(afterSeconds: gap.afterSeconds, duration: gap.durationSeconds), sourceID: sourceID,
                                         wallClock: context.clock.now()))
            case .endOfStream(let stats):
                final = stats
            }
        }
        return final
    }
}
