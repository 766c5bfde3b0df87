import CFFmpeg
import Foundation
import SightlineCore

/// Reads one URL and yields its events in order: opened, frames, reconnects and gaps (live),
/// and finally end-of-stream. Pull-based: call `next()` from one thread; `cancel()` may be called
/// from any thread and makes the source finish promptly with end-of-stream.
///
/// Files read to their end; a read or decode error is counted and skipped, never fatal unless
/// the file cannot be opened at all. Live sources reconnect with backoff and report gaps.
public final class VideoSource {
    public let url: String
    public let options: SourceOptions
    public private(set) var stats = SourceStats()

    private enum State {
        case needOpen
        case streaming
        /// Flush the decoder's delayed frames; then reconnect (live loss) or finish.
        case flushing(lossReason: String?)
        case waitingToReconnect(until: Double)
        case finished
    }

    private var state = State.needOpen
    private var pending: [SourceEvent] = []
    private var pendingIndex = 0

    private let interrupt = InterruptGuard()
    private var input: FormatContext?
    private var decoder: VideoDecoder?
    private var videoStreamIndex: Int32 = -1
    private var timeBase = Rational(1, 1)
    private var frameStep: Int64 = 1
    private let packet = Packet()
    private let decoded = DecodedFrameBuffer()
    private let converter: FrameConverter?
    /// The decoder's lowres step once the source is open (`DecodeQuality.fast`; 0: full size).
    public private(set) var lowres = 0

    private var sampler: FrameSampler
    /// `mode: sampled`: which packets the kept frames need.
    private var sampledPlanner: SampledDecodePlanner?
    /// Shot-aware sampling decides from each decoded frame's luma (nil for other policies).
    private var adaptive: AdaptiveSampler?
    /// The last frame the adaptive sampler passed over in a file, kept by reference so the
    /// end of the file can still be analysed (its decode index, timestamp and arrival).
    private let passedOver = DecodedFrameBuffer()
    private var passedOverInfo: (decodeIndex: Int, timestamp: Timestamp, arrival: Double)?
    /// A file under shot-aware sampling with `mode: nonref`: the packets to decode skipped
    /// frames again from, when a cut may lie among them (nil otherwise).
    private var window: GOPWindow<Packet>?
    /// Decodes skipped frames again, on the open stream (set with `window`).
    private var skippedFrameDecoder: SkippedFrameDecoder?
    /// The last frame the decoder gave (pts and signature), to see a hole with a possible cut.
    private var lastDecoded: (pts: Int64, signature: ShotSignature)?
    /// Frames held back, in order, while the packets of a hole before the first are still to
    /// come (a frame can leave the decoder before the skipped frames shown before it are read).
    private var held: [HeldFrame] = []
    private var packetsSent = 0
    /// Frames of holes decoded again (counted in framesDecoded too).
    private var holeFrames = 0
    /// While skipping frames: the last frame passed on, for its index in the file.
    private var lastProcessed: (pts: Int64, index: Int)?
    private var timeline = LiveTimeline()
    private var backoff: ReconnectBackoff
    private var lastPTS: Int64?
    /// Arrival wall-clock per packet pts, so a frame leaving the decoder (possibly reordered or
    /// delayed by frame threads) carries the time its data reached us.
    private var arrivalByPTS: [Int64: Double] = [:]
    private var lastFrameWallClock: Double?
    private var lastOutputSeconds: Double?
    private var lostAtWallClock: Double?
    /// Start of the first read that waited a whole read timeout: the moment data stopped.
    /// Demuxers release buffered packets when such a read finally fails (MPEG-TS flushes its
    /// last PES), so the last frame's arrival alone would place the loss too late.
    private var stalledSinceWallClock: Double?
    private var readsSinceStall = 0
    private var lastLossReason = ""
    /// A live source's audio goes here, decoded only once someone wants it.
    private let audioTap: AudioTap?
    private var audioStreamIndex: Int32 = -1
    private var audioDecoder: AudioDecoder?

    public init(url: String, options: SourceOptions = SourceOptions(), audioTap: AudioTap? = nil) {
        self.url = url
        self.options = options
        self.audioTap = audioTap
        self.sampler = FrameSampler(policy: options.sampling)
        sampledPlanner = options.mode == .sampled ? SampledDecodePlanner() : nil
        if case .adaptive(let settings) = options.sampling { adaptive = AdaptiveSampler(settings: settings) }
        self.backoff = ReconnectBackoff(policy: options.live?.reconnect ?? .init(maxAttempts: 0))
        self.converter = options.output.map(FrameConverter.init(output:))
    }

    /// Stops the source from any thread: blocking I/O is interrupted, remaining decoded frames
    /// are flushed, and end-of-stream follows.
    public func cancel() { interrupt.cancel() }

    /// A handle another thread (a signal handler, a scheduler) can keep to stop this source.
    public var cancellation: SourceCancellation { SourceCancellation(interrupt: interrupt) }

    /// The next event, or nil after end-of-stream. Throws only for errors that end the source:
    /// it cannot be opened, or a live source did not come back within its reconnect attempts.
    public func next() throws -> SourceEvent? {
        while true {
            if pendingIndex < pending.count {
                let event = pending[pendingIndex]
                pendingIndex += 1
                if pendingIndex == pending.count {
                    pending.removeAll(keepingCapacity: true)
                    pendingIndex = 0
                }
                return event
            }
            switch state {
            case .finished:
                return nil
            case .needOpen:
                if interrupt.isCancelled { finish(); continue }
                do {
                    try open()
                } catch let error as SightlineError {
                    guard options.live != nil, isRetryable(error) else { throw error }
                    if interrupt.isCancelled { finish(); continue }
                    try sourceLost(reason: Self.reason(of: error), refused: Self.isRefusal(error))
                }
            case .streaming:
                try readOnePacket()
            case .flushing(let lossReason):
                flushDecoder()
                releaseHeld(flushing: true)
                if lossReason == nil, !interrupt.isCancelled { emitPassedOverTail() }
                closeInput()
                if let lossReason, !interrupt.isCancelled {
                    try sourceLost(reason: lossReason)
                } else {
                    finish()
                }
            case .waitingToReconnect(let until):
                while !interrupt.isCancelled && Self.now() < until {
                    Thread.sleep(forTimeInterval: min(0.05, max(until - Self.now(), 0)))
                }
                state = interrupt.isCancelled ? .finished : .needOpen
                if interrupt.isCancelled { pending.append(.endOfStream(stats)) }
            }
        }
    }

    // MARK: - Opening

    private func open() throws {
        if !url.contains("://"), !FileManager.default.fileExists(atPath: url) {
            throw SightlineError.inputNotFound(input: url)
        }
        var avOptions = options.live?.avOptions ?? [:]
        avOptions.merge(options.formatOptions) { _, user in user }
        let openTimeout = options.live.map { $0.openTimeout + $0.analyzeDuration }
        let input = try FormatContext(url: url, options: avOptions, interrupt: interrupt, timeout: openTimeout)

        let index = av_find_best_stream(input.pointer, AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0)
        guard index >= 0, let stream = input.stream(at: Int(index)) else {
            throw SightlineError.noVideoStream(input: url)
        }
        let decoder = try VideoDecoder(
            stream: stream, input: url, mode: options.mode, threads: options.threads,
            lowDelay: options.live != nil, quality: options.quality, outputSize: Self.scaledSize(options.output, stream: stream))
        lowres = decoder.lowres
        if options.live == nil, options.mode == .nonref, adaptive != nil {
            window = GOPWindow()
            skippedFrameDecoder = SkippedFrameDecoder(stream: stream, input: url, quality: options.quality,
                                                      outputSize: Self.scaledSize(options.output, stream: stream))
        }
        lastDecoded = nil
        lastProcessed = nil
        held.removeAll()

        self.input = input
        self.decoder = decoder
        videoStreamIndex = index
        audioDecoder = nil
        audioStreamIndex = -1
        if let audioTap {
            let audio = av_find_best_stream(input.pointer, AVMEDIA_TYPE_AUDIO, -1, index, nil, 0)
            audioStreamIndex = audio >= 0 ? audio : -1
            audioTap.found(audio >= 0 ? .present : .none)
        }
        timeBase = Rational(stream.pointee.time_base)
        frameStep = Self.ptsPerFrame(stream: stream)
        lastPTS = nil
        stalledSinceWallClock = nil
        arrivalByPTS.removeAll()
        if options.live != nil {
            sampler.reset()
            adaptive?.reset()
        }
        sampledPlanner?.reset()
        state = .streaming
        pending.append(.opened(streamInfo(input: input, stream: stream, decoder: decoder)))
    }

    private func isRetryable(_ error: SightlineError) -> Bool {
        switch error {
        case .cannotOpen, .noVideoStream, .decoderFailed: true
        default: false
        }
    }

    private static func reason(of error: SightlineError) -> String {
        if case .cannotOpen(_, let reason) = error { return reason }
        return error.description
    }

    // MARK: - Reading and decoding

    private func readOnePacket() throws {
        guard let input, let decoder else { state = .needOpen; return }
        interrupt.arm(seconds: options.live.map { $0.readTimeout + 1 })
        let readStarted = Self.wallClock()
        let result = av_read_frame(input.pointer, packet.pointer)
        let timedOut = interrupt.didExpire
        interrupt.arm(seconds: nil)
        if let live = options.live {
            if Self.wallClock() - readStarted >= live.readTimeout {
                if stalledSinceWallClock == nil { stalledSinceWallClock = readStarted }
                readsSinceStall = 0
            } else if result >= 0, stalledSinceWallClock != nil {
                // A stall that the stream recovers from by itself is no loss. A flush after a
                // real loss yields a few packets at most, so only a run of reads clears it.
                readsSinceStall += 1
                if readsSinceStall > 16 { stalledSinceWallClock = nil }
            }
        }
        if result < 0 {
            if result == SL_AVERROR_EAGAIN { return }
            if interrupt.isCancelled {
                state = .flushing(lossReason: nil)
            } else if result == SL_AVERROR_EOF {
                state = .flushing(lossReason: options.live != nil ? "stream ended" : nil)
            } else {
                stats.readErrors += 1
                let reason = timedOut || result == POSIXCode.timedOut || result == SL_AVERROR_EXIT
                    ? "no data for \(options.live?.readTimeout ?? 0) s" : ffmpegErrorString(result)
                // A file that fails mid-read (truncated, I/O error) ends here with what it had;
                // the error is counted in the stats, not swallowed.
                state = .flushing(lossReason: options.live != nil ? reason : nil)
            }
            return
        }
        defer { packet.unref() }
        let pkt = packet.pointer.pointee
        if pkt.stream_index == audioStreamIndex {
            handleAudioPacket()
            return
        }
        guard pkt.stream_index == videoStreamIndex else { return }
        stats.packetsRead += 1
        if pkt.flags & SL_AV_PKT_FLAG_CORRUPT != 0 {
            stats.corruptPackets += 1
            return
        }
        if options.mode == .keyframes && pkt.flags & SL_AV_PKT_FLAG_KEY == 0 {
            // skip_frame=NONKEY already stops the decoder from decoding these; not sending them
            // at all also saves the parsing.
            stats.packetsSkipped += 1
            return
        }
        if let decision = sampledPlanner?.decide(pts: pkt.pts == SL_AV_NOPTS_VALUE ? nil : pkt.pts, isKey: pkt.flags & SL_AV_PKT_FLAG_KEY != 0,
                                                 timeBase: timeBase, sampler: sampler) {
            stats.samplesDelayed = sampledPlanner?.delayedSamples ?? 0
            if decision == .skip {
                stats.packetsSkipped += 1
                return
            }
        }
        if pkt.pts != SL_AV_NOPTS_VALUE {
            arrivalByPTS[pkt.pts] = Self.wallClock()
        }
        if window != nil {
            let copy = Packet()
            if av_packet_ref(copy.pointer, packet.pointer) >= 0 {
                window?.append(copy, pts: pkt.pts == SL_AV_NOPTS_VALUE ? nil : pkt.pts,
                               isKey: pkt.flags & SL_AV_PKT_FLAG_KEY != 0, bytes: Int(pkt.size))
            }
            packetsSent += 1
        }
        var sent = decoder.send(packet.pointer)
        if sent == SL_AVERROR_EAGAIN {
            receiveFrames(from: decoder)
            sent = decoder.send(packet.pointer)
        }
        if sent < 0 && sent != SL_AVERROR_EOF {
            stats.corruptPackets += 1
        }
        receiveFrames(from: decoder)
        if !held.isEmpty { releaseHeld(flushing: false) }
    }

    /// Decodes an audio packet for the tap, when someone wants the audio, and places it on the
    /// frames' timeline (audio read before this connection's first frame has no place yet).
    private func handleAudioPacket() {
        guard let audioTap, audioTap.isWanted, let input else { return }
        if audioDecoder == nil {
            guard let stream = input.stream(at: Int(audioStreamIndex)) else { return }
            do {
                audioDecoder = try AudioDecoder(stream: stream, sampleRate: audioTap.sampleRate, input: url)
            } catch {
                audioTap.found(.broken("\(error)"))
                audioStreamIndex = -1
                return
            }
        }
        guard let blocks = try? audioDecoder?.decode(packet.pointer) else {
            stats.corruptPackets += 1
            return
        }
        for block in blocks where !block.samples.isEmpty {
            guard let raw = block.seconds, let start = options.live != nil ? timeline.place(raw: raw) : raw else { continue }
            audioTap.push(AudioTap.Block(start: start, samples: block.samples))
        }
    }

    private func flushDecoder() {
        guard let decoder else { return }
        _ = decoder.send(nil)
        receiveFrames(from: decoder)
    }

    private func receiveFrames(from decoder: VideoDecoder) {
        while true {
            let result = decoder.receive(into: decoded)
            if result == SL_AVERROR_EAGAIN || result == SL_AVERROR_EOF { return }
            if result < 0 {
                stats.corruptFrames += 1
                return
            }
            defer { decoded.unref() }
            handleDecodedFrame(decoded.pointer)
        }
    }

    /// The size the converter scales the stream's pictures to, which bounds a `fast` decode's
    /// reduction. Only an explicit size counts: without one, frames keep the source's. Cropping
    /// scales the source past the output on one side, so the scaled size, not the output's.
    private static func scaledSize(_ output: OutputFormat?, stream: UnsafeMutablePointer<AVStream>) -> (width: Int, height: Int)? {
        guard let output, output.width != nil || output.height != nil, let parameters = stream.pointee.codecpar else { return nil }
        let (width, height) = (Int(parameters.pointee.width), Int(parameters.pointee.height))
        let size = output.size(sourceWidth: width, sourceHeight: height)
        let plan = ResizePlan.make(mode: output.resize, sourceWidth: width, sourceHeight: height, outputWidth: size.width, outputHeight: size.height)
        return (plan.scaledWidth, plan.scaledHeight)
    }

    private func handleDecodedFrame(_ frame: UnsafeMutablePointer<AVFrame>) {
        let signature = adaptive != nil ? ShotSignature(decoded: frame) : nil
        guard window != nil else {
            process(frame, signature: signature)
            return
        }
        // A hole (frames the decoder skipped) before a frame that differs from the last one by
        // a cut's worth: the cut may lie on any frame of it, so decode the hole again first.
        let pts = frame.pointee.best_effort_timestamp
        var hole: Hole?
        if pts != SL_AV_NOPTS_VALUE, let last = lastDecoded {
            let skipped = framesSkipped(after: last.pts, before: pts)
            stats.framesSkipped += skipped
            if skipped > 0, let signature, let cut = adaptive?.settings.cut, signature.distance(to: last.signature) > cut {
                hole = Hole(after: last.pts, before: pts, expected: skipped, packetsAtOutput: packetsSent)
            }
        }
        lastDecoded = signature.flatMap { signature in pts == SL_AV_NOPTS_VALUE ? nil : (pts, signature) }
        if hole == nil && held.isEmpty {
            process(frame, signature: signature)
            return
        }
        let copy = DecodedFrameBuffer()
        guard av_frame_ref(copy.pointer, frame) >= 0 else {
            stats.corruptFrames += 1
            return
        }
        held.append(HeldFrame(frame: copy, signature: signature, hole: hole))
        releaseHeld(flushing: false)
    }

    /// Frames between two the decoder gave, from their timestamps' spacing (0 when they are
    /// less than one and a half frames apart).
    private func framesSkipped(after: Int64, before: Int64) -> Int {
        let gap = before - after
        guard gap > frameStep + frameStep / 2 else { return 0 }
        return framesSpanned(gap) - 1
    }

    /// Whole frame steps in `gap` (timestamp units), rounded to the nearest.
    private func framesSpanned(_ gap: Int64) -> Int { Int((gap + frameStep / 2) / frameStep) }

    /// Skipped frames between two decoded ones, where a cut may lie.
    private struct Hole {
        let after: Int64
        let before: Int64
        /// Frames the hole holds at a constant frame rate.
        let expected: Int
        /// Packets sent when the later frame left the decoder.
        let packetsAtOutput: Int
    }

    private struct HeldFrame {
        let frame: DecodedFrameBuffer
        let signature: ShotSignature?
        let hole: Hole?
    }

    /// A hole's packets all come within this many packets after the frame behind it leaves the
    /// decoder (B-frame runs are far shorter); past it, or at the end, the hole is decoded with
    /// what was read.
    static let holeWaitPackets = 32

    /// Passes held frames on in order, each after its hole's skipped frames once their packets
    /// are read (`flushing`: the input ended, nothing more comes).
    private func releaseHeld(flushing: Bool) {
        while let first = held.first {
            if let hole = first.hole {
                let ready = flushing || (window?.count(between: hole.after, and: hole.before) ?? 0) >= hole.expected
                    || packetsSent - hole.packetsAtOutput >= Self.holeWaitPackets
                guard ready else { return }
                decodeAgain(hole)
            }
            held.removeFirst()
            process(first.frame.pointer, signature: first.signature)
        }
    }

    /// Decodes a hole's skipped frames and passes them to the sampler in order, as a decode of
    /// every frame would have. Without the packets (the window's bounds) or a decoder, the cut
    /// stays on the frame after the hole, and the stats count it.
    private func decodeAgain(_ hole: Hole) {
        guard let window, let skippedFrameDecoder, let packets = window.replay(after: hole.after) else {
            stats.holesNotRedecoded += 1
            return
        }
        do {
            let result = try skippedFrameDecoder.frames(from: packets, after: hole.after, before: hole.before)
            stats.holesRedecoded += 1
            // The hole's own frames count as decoded (the sampler sees them); what else the
            // second decoder had to decode is the extra work.
            stats.framesRedecoded += result.decoded - result.frames.count
            holeFrames += result.frames.count
            for frame in result.frames {
                process(frame.pointer, signature: ShotSignature(decoded: frame.pointer))
            }
            if stats.skippingStoppedAt == nil, !NonrefSkipping.pays(skipped: stats.framesSkipped, redecoded: holeFrames + stats.framesRedecoded),
               let decoder = self.decoder {
                // Holes cost more to decode again than skipping saves: decode every frame from
                // here on (FFmpeg reads skip_frame per packet, frame threads included).
                decoder.context.pointee.skip_frame = AVDISCARD_DEFAULT
                stats.skippingStoppedAt = Timestamp(pts: hole.before, timeBase: timeBase).seconds
            }
        } catch {
            stats.holesNotRedecoded += 1
        }
    }

    private func process(_ frame: UnsafeMutablePointer<AVFrame>, signature: ShotSignature?) {
        stats.framesDecoded += 1
        var decodeIndex = stats.framesDecoded - 1
        if window != nil {
            // Skipping frames: the index still counts the skipped ones, from the timestamps'
            // spacing, so a frame keeps its place in the file (exact at a constant frame rate).
            let pts = frame.pointee.best_effort_timestamp
            if pts != SL_AV_NOPTS_VALUE, let last = lastProcessed {
                decodeIndex = last.index + max(framesSpanned(pts - last.pts), 1)
            } else if let last = lastProcessed {
                decodeIndex = last.index + 1
            }
            lastProcessed = (pts == SL_AV_NOPTS_VALUE ? (lastProcessed?.pts ?? 0) + frameStep : pts, decodeIndex)
        }
        if sl_frame_is_corrupt(frame) != 0 {
            stats.corruptFrames += 1
            let wasSkipping = sampledPlanner.map { !$0.disabled } ?? false
            sampledPlanner?.frameWasDamaged()
            let pts = frame.pointee.best_effort_timestamp
            if wasSkipping, sampledPlanner?.disabled == true, stats.skippingStoppedAt == nil, pts != SL_AV_NOPTS_VALUE {
                stats.skippingStoppedAt = Timestamp(pts: pts, timeBase: timeBase).seconds
            }
            if !options.keepCorruptFrames { return }
        }
        let pts = resolvePTS(frame)
        let timestamp = Timestamp(pts: pts, timeBase: timeBase)
        let arrival = takeArrival(for: frame.pointee.pts)
        let (keep, reason) = shouldKeep(signature, timestamp)
        if keep, sampledPlanner != nil, sl_frame_is_keyframe(frame) != 0 { sampler.anchor(at: timestamp) }
        guard keep else {
            stats.framesSampledOut += 1
            if adaptive != nil, options.live == nil {
                passedOver.unref()
                if av_frame_ref(passedOver.pointer, frame) == 0 {
                    passedOverInfo = (decodeIndex, timestamp, arrival)
                }
            }
            return
        }
        emit(frame, decodeIndex: decodeIndex, timestamp: timestamp, arrival: arrival, sampled: reason)
    }

    /// Whether the frame is kept, and why when the adaptive sampler decided (nil otherwise).
    private func shouldKeep(_ signature: ShotSignature?, _ timestamp: Timestamp) -> (Bool, AdaptiveSampler.Reason?) {
        guard var adaptive, let signature else { return (sampler.shouldKeep(timestamp), nil) }
        defer { self.adaptive = adaptive }
        guard let reason = adaptive.decide(time: timestamp.seconds, signature: signature) else { return (false, nil) }
        stats.framesKeptBy[reason.rawValue, default: 0] += 1
        passedOverInfo = nil
        passedOver.unref()
        return (true, reason)
    }

    /// End of a file under adaptive sampling: its last frame, when the sampler passed it over
    /// and it lies a sampling interval after the last keep.
    private func emitPassedOverTail() {
        guard var adaptive, let info = passedOverInfo else { return }
        passedOverInfo = nil
        defer { passedOver.unref() }
        guard adaptive.wantsTail(time: info.timestamp.seconds) else { return }
        self.adaptive = adaptive
        stats.framesSampledOut -= 1
        stats.framesKeptBy[AdaptiveSampler.Reason.tail.rawValue, default: 0] += 1
        emit(passedOver.pointer, decodeIndex: info.decodeIndex, timestamp: info.timestamp, arrival: info.arrival, sampled: .tail)
    }

    /// `sampled`: why the adaptive sampler kept the frame (nil under other sampling).
    private func emit(_ frame: UnsafeMutablePointer<AVFrame>, decodeIndex: Int, timestamp: Timestamp, arrival: Double,
                      sampled: AdaptiveSampler.Reason?) {
        if let lostAt = lostAtWallClock {
            // Data is back after a loss: report how long it was gone before the frame itself.
            let duration = max(arrival - lostAt, 0)
            if lastOutputSeconds != nil {
                pending.append(.gap(SourceGap(afterSeconds: lastOutputSeconds ?? 0, durationSeconds: duration)))
                stats.gapSeconds += duration
                timeline.noteGap(seconds: duration)
            }
            lostAtWallClock = nil
            backoff.succeeded()
        } else if options.live != nil {
            backoff.succeeded()
        }
        let seconds = options.live != nil ? timeline.map(raw: timestamp.seconds) : timestamp.seconds

        var pixels: [UInt8] = []
        var width = Int(frame.pointee.width)
        var height = Int(frame.pointee.height)
        if let converter {
            do {
                (pixels, width, height) = try converter.convert(frame)
            } catch {
                stats.corruptFrames += 1
                return
            }
        }
        stats.framesEmitted += 1
        lastFrameWallClock = arrival
        lastOutputSeconds = seconds
        // Under adaptive sampling, say why the frame was kept: the shots node cuts only where
        // the sampler, which saw every decoded frame, found a cut.
        let metadata = sampled.map { [AdaptiveSampler.frameMetadataKey: $0.rawValue] } ?? [:]
        pending.append(.frame(Frame(
            sourceID: options.sourceID, decodeIndex: decodeIndex, timestamp: timestamp, seconds: seconds,
            ingestWallClock: arrival, isKeyframe: sl_frame_is_keyframe(frame) != 0,
            width: width, height: height, pixelFormat: options.output?.pixelFormat ?? .rgb24,
            pixels: pixels, metadata: metadata)))
    }

    /// best_effort_timestamp already copes with B-frame reordering and guessed pts; when even
    /// that is missing, continue from the previous frame by one frame duration.
    private func resolvePTS(_ frame: UnsafeMutablePointer<AVFrame>) -> Int64 {
        var pts = frame.pointee.best_effort_timestamp
        if pts == SL_AV_NOPTS_VALUE {
            let duration = sl_frame_duration(frame)
            pts = (lastPTS ?? -(duration > 0 ? duration : frameStep)) + (duration > 0 ? duration : frameStep)
        }
        lastPTS = pts
        return pts
    }

    private func takeArrival(for pts: Int64) -> Double {
        guard pts != SL_AV_NOPTS_VALUE, let arrival = arrivalByPTS.removeValue(forKey: pts) else {
            return Self.wallClock()
        }
        // Frames leave in pts order, so older entries belong to frames that were never output
        // (skipped or dropped by the decoder).
        if arrivalByPTS.count > 32 {
            arrivalByPTS = arrivalByPTS.filter { $0.key > pts }
        }
        return arrival
    }

    // MARK: - Loss, reconnect, finish

    /// The other side answered that nothing listens there.
    private static func isRefusal(_ error: SightlineError) -> Bool {
        guard case .cannotOpen(_, let reason) = error else { return false }
        return reason.localizedCaseInsensitiveContains("connection refused")
    }

    private func sourceLost(reason: String, refused: Bool = false) throws {
        closeInput()
        if lostAtWallClock == nil {
            lostAtWallClock = [stalledSinceWallClock, lastFrameWallClock].compactMap { $0 }.min() ?? Self.wallClock()
        }
        lastLossReason = reason
        switch backoff.failed(refused: refused, now: Self.now()) {
        case .retry(let attempt, let delay):
            stats.reconnects += 1
            pending.append(.reconnecting(attempt: attempt, delay: delay, reason: reason))
            state = .waitingToReconnect(until: Self.now() + delay)
        case .giveUp(let attempts):
            state = .finished
            throw SightlineError.connectionFailed(input: url, reason: reason, attempts: attempts + 1)
        }
    }

    private func closeInput() {
        window?.removeAll()
        skippedFrameDecoder = nil
        held.removeAll()
        lastDecoded = nil
        decoder = nil
        audioDecoder = nil
        input = nil
    }

    private func finish() {
        closeInput()
        audioTap?.finish()
        state = .finished
        pending.append(.endOfStream(stats))
    }

    // MARK: - Helpers

    private static func ptsPerFrame(stream: UnsafeMutablePointer<AVStream>) -> Int64 {
        let rate = stream.pointee.avg_frame_rate.num > 0 ? stream.pointee.avg_frame_rate : stream.pointee.r_frame_rate
        let tb = stream.pointee.time_base
        guard rate.num > 0, rate.den > 0, tb.num > 0 else { return 1 }
        return max(1, av_rescale_q(1, AVRational(num: rate.den, den: rate.num), tb))
    }

    private func streamInfo(input: FormatContext, stream: UnsafeMutablePointer<AVStream>, decoder: VideoDecoder) -> StreamInfo {
        let par = stream.pointee.codecpar.pointee
        let format = input.pointer.pointee.iformat.map { String(cString: $0.pointee.name) } ?? "unknown"
        let pixelFormat = av_get_pix_fmt_name(AVPixelFormat(par.format)).map { String(cString: $0) } ?? "unknown"
        let start = stream.pointee.start_time
        let duration = stream.pointee.duration
        return StreamInfo(
            url: url, container: format, codec: decoder.codecName,
            width: Int(par.width), height: Int(par.height), pixelFormat: pixelFormat,
            timeBase: timeBase, averageFrameRate: Rational(stream.pointee.avg_frame_rate),
            startSeconds: start == SL_AV_NOPTS_VALUE ? nil : Timestamp(pts: start, timeBase: timeBase).seconds,
            durationSeconds: duration == SL_AV_NOPTS_VALUE ? nil : Timestamp(pts: duration, timeBase: timeBase).seconds)
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
    static func wallClock() -> Double { Date().timeIntervalSince1970 }
}

/// Stops a `VideoSource` from any thread.
public struct SourceCancellation: Sendable {
    let interrupt: InterruptGuard
    public func cancel() { interrupt.cancel() }
    /// Whether the source was told to stop (its end then does not mean the input was done).
    public var isCancelled: Bool { interrupt.isCancelled }
}
