import ArgumentParser
import Foundation
import SightlineCore
import SightlineMedia

/// Options shared by every command that opens a source.
struct SourceArguments: ParsableArguments {
    @Option(help: "Which frames the decoder decodes: all, keyframes (others never decoded), nonref (skip non-reference frames; with --adaptive on a file, skipped frames where a cut may lie are decoded again, so cuts stay on their exact frame), sampled (with --fps: skip the packets after the last kept frame before the next keyframe, once keyframes come at a steady interval; for live cameras without B-frames).")
    var mode: DecodeMode = .all

    @Option(help: "Decode quality: full, or fast (no deblocking loop filter, FFmpeg's fast flag, and a half/quarter/eighth-size decode where the codec has one and --size allows; for small frames: shots, statistics).")
    var quality: DecodeQuality = .full

    @Option(help: "Keep N frames per second of media time (e.g. 2, 0.5, 30000/1001). Dropped frames are never converted.")
    var fps: Rational?

    @Option(help: "Keep every Nth decoded frame.")
    var every: Int?

    @Flag(help: "Shot-aware sampling: the first frame of every cut, up to --fps (default 2) frames/s where the picture changes, one frame per --max-gap s where it holds still, and the last frame.")
    var adaptive = false

    @Option(help: "With --adaptive: a still shot still gets a frame this often (seconds).")
    var maxGap: Double = AdaptiveSampling.Defaults.maxGap

    @Option(help: "With --adaptive: share of the picture (0–1) changed since the last kept frame that asks for another.")
    var change: Double = AdaptiveSampling.Defaults.change

    @Option(help: "With --adaptive: picture change (0–1) between two decoded frames that keeps the frame as a cut.")
    var cut: Double = AdaptiveSampling.Defaults.cut

    @Option(help: "Decoder threads (0: one per core).")
    var threads: Int = 0

    @Option(help: "Convert kept frames to WxH (or Wx / xH to keep aspect). Default: source size.")
    var size: FrameSize?

    @Option(help: "How to fit --size: stretch, letterbox (pad) or crop (cover).")
    var resize: ResizeMode = .stretch

    @Option(help: "Pixel format of converted frames: rgb24, bgr24, gray8.")
    var pixelFormat: PixelFormat = .rgb24

    @Flag(help: "Decode only; skip conversion to RGB (what `ffmpeg -f null` measures).")
    var noConvert = false

    @Flag(inversion: .prefixedNo, help: "Live behaviour: low-latency open, reconnect with backoff, monotonic time. Default: on for rtsp/rtmp/srt/udp/tcp/rtp URLs.")
    var live: Bool?

    @Option(help: "Live: seconds without data before the source counts as lost.")
    var readTimeout: Double = 3

    @Option(help: "Live: seconds allowed for connecting and probing.")
    var openTimeout: Double = 5

    @Option(help: "Live: reconnect attempts after a loss before giving up.")
    var reconnectAttempts: Int = 10

    @Option(help: "Live: first reconnect delay in seconds (doubles each attempt).")
    var reconnectDelay: Double = 0.5

    @Option(help: "Live: longest reconnect delay in seconds (a refused connection is retried every 0.5 s in between).")
    var reconnectMaxDelay: Double = 8

    @Option(name: .customLong("option"), help: "Extra FFmpeg option key=value for opening, e.g. rtsp_transport=tcp (repeatable).")
    var formatOptions: [KeyValue] = []

    @Option(help: "Source id used in events.")
    var sourceID: String = "source"

    @Option(help: "FFmpeg's own log level.")
    var ffmpegLog: FFmpegLogLevel = .quiet

    func validate() throws {
        if fps != nil && every != nil { throw ValidationError("--fps and --every cannot be combined; choose one sampler.") }
        if adaptive && every != nil { throw ValidationError("--adaptive takes its rate from --fps, not --every.") }
        if maxGap <= 0 { throw ValidationError("--max-gap must be positive.") }
        if change <= 0 || change > 1 { throw ValidationError("--change must be in (0, 1].") }
        if cut <= 0 || cut > 1 { throw ValidationError("--cut must be in (0, 1].") }
        if let fps, fps.numerator <= 0 || fps.denominator <= 0 { throw ValidationError("--fps must be positive.") }
        if let every, every < 1 { throw ValidationError("--every must be at least 1.") }
        if threads < 0 || threads > 64 { throw ValidationError("--threads must be between 0 and 64.") }
        if readTimeout <= 0 || openTimeout <= 0 { throw ValidationError("timeouts must be positive.") }
        if reconnectAttempts < 0 { throw ValidationError("--reconnect-attempts cannot be negative.") }
        if reconnectDelay < 0 || reconnectMaxDelay < reconnectDelay {
            throw ValidationError("need 0 ≤ --reconnect-delay ≤ --reconnect-max-delay.")
        }
        if noConvert && size != nil { throw ValidationError("--size has no effect with --no-convert.") }
        if mode == .sampled && (fps == nil || adaptive) {
            throw ValidationError("--mode sampled needs --fps (N frames per second) without --adaptive: it skips what that sampling will not keep.")
        }
    }

    func sourceOptions(for url: String) -> SourceOptions {
        let sampling: SamplingPolicy =
            if adaptive { .adaptive(AdaptiveSampling(maxRate: fps ?? AdaptiveSampling.Defaults.maxRate, maxGap: maxGap, cut: Float(cut), change: Float(change))) }
            else if let fps { .perSecond(fps) } else if let every { .everyNth(every) } else { .all }
        let isLive = live ?? SourceOptions.isLiveURL(url)
        return SourceOptions(
            sourceID: sourceID, mode: mode, quality: quality, sampling: sampling, threads: threads,
            output: noConvert ? nil : OutputFormat(width: size?.width, height: size?.height, pixelFormat: pixelFormat, resize: resize),
            live: isLive ? LiveOptions(
                readTimeout: readTimeout, openTimeout: openTimeout,
                reconnect: .init(maxAttempts: reconnectAttempts, initialDelay: reconnectDelay, maxDelay: reconnectMaxDelay))
                : nil,
            formatOptions: Dictionary(formatOptions.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 }))
    }
}

struct DecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Decode a file or stream, sample and convert frames, and report frame count and speed.",
        discussion: """
        Prints a summary line: frames decoded and kept, wall time, frames/s, and every skipped or \
        corrupt packet. With --events, prints one JSON line per event (opened, frame, reconnecting, \
        gap, end-of-stream) to stdout. Ctrl-C stops cleanly and still prints the summary.
        """
    )

    @Argument(help: "A file path or any URL FFmpeg can open.")
    var url: String

    @OptionGroup var source: SourceArguments

    @Flag(help: "Print one JSON line per event to stdout.")
    var events = false

    @Option(help: "Stop after this many kept frames.")
    var limit: Int?

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1.") }
    }

    func run() throws {
        source.ffmpegLog.apply()
        let videoSource = VideoSource(url: url, options: source.sourceOptions(for: url))
        let cancellation = videoSource.cancellation
        let trap = SignalTrap {
            cancellation.cancel()
            // FFmpeg blocked in open(2) or read(2) (a FIFO nobody writes, a dead mount) never
            // sees the cancel; do not make the user wait for it.
            DispatchQueue.global().asyncAfter(deadline: .now() + 1.5) {
                printError("stopped: '\(url)' is blocked in a read and did not answer the stop")
                Foundation.exit(130)
            }
        }
        defer { withExtendedLifetime(trap) {} }

        let printer = EventPrinter(enabled: events)
        var started: Double?
        var finalStats = SourceStats()
        var kept = 0
        while let event = try videoSource.next() {
            if case .frame = event, let limit, kept >= limit {
                continue  // decoded before the cancel took hold; not part of the output
            }
            printer.print(event)
            switch event {
            case .opened:
                if started == nil { started = monotonicSeconds() }
            case .frame:
                kept += 1
                if let limit, kept >= limit { videoSource.cancel() }
            case .reconnecting(let attempt, let delay, let reason):
                printError("'\(url)': source lost (\(reason)); reconnect attempt \(attempt) in \(String(format: "%.1f", delay)) s")
            case .gap(let gap):
                printError(String(format: "'%@': source back after a %.2f s gap", url, gap.durationSeconds))
            case .endOfStream(let stats):
                finalStats = stats
            }
        }
        let elapsed = max(monotonicSeconds() - (started ?? monotonicSeconds()), 1e-9)
        finalStats.framesEmitted = kept
        FileHandle.standardError.write(Data(summary(finalStats, elapsed: elapsed).utf8))
    }

    private func summary(_ stats: SourceStats, elapsed: Double) -> String {
        var line = String(
            format: "decoded %d frames, kept %d, in %.3f s: %.1f frames/s decoded",
            stats.framesDecoded, stats.framesEmitted, elapsed, Double(stats.framesDecoded) / elapsed)
        var notes: [String] = []
        if stats.packetsSkipped > 0 { notes.append("\(stats.packetsSkipped) packets skipped (never decoded)") }
        if stats.samplesDelayed > 0 { notes.append("\(stats.samplesDelayed) kept frames delayed to a keyframe that came late") }
        if stats.framesSampledOut > 0 { notes.append("\(stats.framesSampledOut) frames sampled out") }
        if !stats.framesKeptBy.isEmpty {
            notes.append("kept for " + AdaptiveSampler.Reason.allCases.compactMap { r in stats.framesKeptBy[r.rawValue].map { "\(r.rawValue) \($0)" } }.joined(separator: ", "))
        }
        if stats.holesRedecoded > 0 {
            notes.append("\(stats.holesRedecoded) holes of skipped frames decoded again for a possible cut, with \(stats.framesRedecoded) reference frames decoded a second time")
        }
        if let stopped = stats.skippingStoppedAt {
            notes.append(String(format: source.mode == .sampled ? "decoding every frame from %.2f s: a damaged frame followed skipped packets (an open GOP)"
                                                                 : "decoding every frame from %.2f s: holes cost more to decode again than skipping saved", stopped))
        }
        if stats.holesNotRedecoded > 0 { notes.append("\(stats.holesNotRedecoded) holes not decoded again (past the packet window)") }
        if stats.corruptPackets > 0 { notes.append("\(stats.corruptPackets) corrupt packets skipped") }
        if stats.corruptFrames > 0 { notes.append("\(stats.corruptFrames) corrupt frames dropped") }
        if stats.readErrors > 0 { notes.append("\(stats.readErrors) read errors (input ended early)") }
        if stats.reconnects > 0 { notes.append("\(stats.reconnects) reconnects") }
        if stats.gapSeconds > 0 { notes.append(String(format: "%.2f s in gaps", stats.gapSeconds)) }
        if !notes.isEmpty { line += " (" + notes.joined(separator: ", ") + ")" }
        return line + "\n"
    }
}

/// One JSON object per line, stable key order, so scripts and tests can read events.
struct EventPrinter {
    let enabled: Bool

    func print(_ event: SourceEvent) {
        guard enabled else { return }
        var object: [String: Any]
        switch event {
        case .opened(let info):
            object = [
                "event": "opened", "url": info.url, "container": info.container, "codec": info.codec,
                "width": info.width, "height": info.height, "pixel_format": info.pixelFormat,
                "time_base": info.timeBase.description,
            ]
        case .frame(let frame):
            object = [
                "event": "frame", "source": frame.sourceID, "index": frame.decodeIndex, "pts": frame.timestamp.pts,
                "pts_time": frame.timestamp.seconds, "seconds": frame.seconds, "key": frame.isKeyframe,
                "wallclock": frame.ingestWallClock, "width": frame.width, "height": frame.height,
            ]
            // Shot-aware sampling says why it kept the frame (first, cut, change, gap, tail).
            if let reason = frame.metadata[AdaptiveSampler.frameMetadataKey] { object["sampled"] = reason }
        case .reconnecting(let attempt, let delay, let reason):
            object = ["event": "reconnecting", "attempt": attempt, "delay": delay, "reason": reason]
        case .gap(let gap):
            object = ["event": "gap", "after_seconds": gap.afterSeconds, "duration": gap.durationSeconds]
        case .endOfStream(let stats):
            object = [
                "event": "end_of_stream", "frames_decoded": stats.framesDecoded, "frames_emitted": stats.framesEmitted,
                "packets_read": stats.packetsRead, "packets_skipped": stats.packetsSkipped,
                "corrupt_packets": stats.corruptPackets, "corrupt_frames": stats.corruptFrames,
                "read_errors": stats.readErrors, "reconnects": stats.reconnects, "gap_seconds": stats.gapSeconds,
                "frames_sampled_out": stats.framesSampledOut,
                "frames_skipped": stats.framesSkipped, "holes_redecoded": stats.holesRedecoded,
                "frames_redecoded": stats.framesRedecoded, "holes_not_redecoded": stats.holesNotRedecoded,
                "samples_delayed": stats.samplesDelayed,
            ]
            if let stopped = stats.skippingStoppedAt { object["skipping_stopped_at"] = stopped }
        }
        if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) {
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        }
    }
}

func monotonicSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
