import Foundation
import SightlineCore
import SightlineGraph
import SightlineMedia
import SightlineModelServers
import Synchronization

/// `transcribe`: what is said in a source's audio, from a speech model server the user runs
/// (whisper.cpp's server, faster-whisper, vLLM, a hosted API) over the OpenAI-compatible
/// `/v1/audio/transcriptions`. When a source's first frame passes, the node reads that media's
/// audio track on its own (demuxed, resampled to 16 kHz mono by libswresample), splits it at
/// pauses into chunks of at most 30 s, and sends each as a WAV file. Each answer becomes a
/// `transcripts` record spanning its chunk, with the server's segment times moved onto the
/// source's clock and the moderation policy's terms masked. Frames and records pass on at once;
/// transcripts go out as they arrive and before the source's end. Each frame passing on carries
/// how far the audio has been heard (`heardKey`), so a captions node downstream can hold a
/// shot's caption until what was said in it is in. Answers are cached on disk by the chunk's
/// audio, so a rerun costs the server nothing. A file with no audio track is said once on the
/// status topic, and so is a failed chunk (its span is then not covered).
public final class TranscribeNode: NodeProcessor, @unchecked Sendable {
    private let client: ModelServerClient?
    private let model: String
    private let language: String?
    private let chunking: SpeechChunker.Settings
    private let terms: TermMask
    private let concurrency: Int
    private let waitLimit: Double
    private let cache: ResponseCache?
    private var started: Set<String> = []
    private var running: [String: Task<Void, Never>] = [:]
    /// Where the reading, chunking and sending run (not Swift's shared pool: see QueueTaskExecutor).
    private let executor = QueueTaskExecutor(label: "sightline.transcribe")
    /// Transcripts ready to go out, and per source how far its audio is heard: one lock, so a
    /// frame's mark never runs ahead of the transcripts emitted before it.
    private let state = Mutex<(finished: [Item], coverage: [String: SpeechCoverage])>(([], [:]))

    /// Frame metadata: seconds on the source's clock before which every transcript of the
    /// source has gone out ahead of this frame ("inf" once the whole track has).
    public static let heardKey = "sl.speech.heard"
    private var saidDisabled = false
    private var lastNow = 0.0

    public static let descriptor = NodeDescriptor(
        name: "transcribe",
        description: "Transcripts of a source's audio from your speech model server (OpenAI-compatible /v1/audio/transcriptions): 16 kHz mono chunks of at most 30 s split at pauses, segment times on the source's clock.",
        role: .transform, inputs: .any, outputs: .any,
        options: [
            OptionSpec("endpoint", .string, default: .string(""), help: "the server's API base, e.g. http://127.0.0.1:8080/v1; empty: no transcripts (said once on the status topic)"),
            OptionSpec("model", .string, default: .string("whisper-1"), help: "the model name the server serves"),
            OptionSpec("api_key_env", .string, default: .string("SIGHTLINE_ASR_API_KEY"), help: "environment variable holding the API key (sent as a Bearer token); never put the key in the pipeline file"),
            OptionSpec("api_key_file", .inputFile, default: .string(""), help: "a file holding the API key (instead of the environment variable)"),
            OptionSpec("language", .string, default: .string(""), help: "ISO-639-1 language of the speech (empty: the server detects it)"),
            OptionSpec("max_chunk", .double, default: .double(30), min: 2, max: 600, help: "longest chunk sent, seconds (Whisper models take 30)"),
            OptionSpec("silence_db", .double, default: .double(-40), min: -90, max: 0, help: "RMS level (dB full scale) below which 30 ms of audio count as a pause"),
            OptionSpec("timeout", .double, default: .double(60), min: 0.1, max: 600, help: "seconds one attempt may take"),
            OptionSpec("retries", .int, default: .int(2), min: 0, max: 10, help: "attempts after the first (5xx, 429, timeouts, dropped connections), with growing delays and jitter"),
            OptionSpec("concurrency", .int, default: .int(1), min: 1, max: 16, help: "chunks in flight at once per source"),
            OptionSpec("cache", .outputPath, default: .string("asr-cache"), help: "folder of cached answers by chunk audio (relative to the output folder); empty: no cache"),
            OptionSpec("policy", .inputFile, default: .string(""), help: "moderation policy whose text terms are masked in transcripts (and flag them), as in captions",
                       checkFile: { _ = try ModerationPolicy.load(path: $0) }),
        ],
        contract: NodeContract(needs: [], produces: [.init(.transcripts)]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(try TranscribeNode(options: options))
    }

    init(options: NodeOptions) throws {
        (client, waitLimit) = try modelServerClient(options, defaultTimeout: 60)
        model = options.string("model") ?? "whisper-1"
        language = (options.string("language") ?? "").isEmpty ? nil : options.string("language")
        chunking = SpeechChunker.Settings(silenceDB: Float(options.double("silence_db") ?? -40), maxSeconds: options.double("max_chunk") ?? 30)
        terms = try TermMask(policy: options.string("policy"))
        concurrency = options.int("concurrency") ?? 1
        cache = responseCache(options)
    }

    /// While a source's audio is being transcribed, the graph calls `flush` every 50 ms so
    /// transcripts go out as they arrive, not with the next frame.
    public var flushDeadline: Double? { running.isEmpty ? nil : lastNow + 0.05 }

    public func flush(context: any NodeContext, emit: (Item) -> Void) throws {
        lastNow = context.clock.now()
        emitFinished(source: nil, emit: emit)
    }

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        lastNow = context.clock.now()
        switch item {
        case .frame(var frame):
            if !started.contains(frame.sourceID) {
                started.insert(frame.sourceID)
                begin(frame, context: context)
            }
            let heard = emitFinished(source: frame.sourceID, emit: emit)
            if let heard { frame.metadata[Self.heardKey] = String(heard) }
            emit(.frame(frame))
        case .endOfStream(let eos):
            // A file's transcripts go out before its end (sinks close its results there).
            if let task = running.removeValue(forKey: eos.sourceID) {
                let done = DispatchSemaphore(value: 0)
                Task.detached(executorPreference: executor) {
                    await task.value
                    done.signal()
                }
                if done.wait(timeout: .now() + waitLimit) == .timedOut {
                    task.cancel()
                    say("the speech server did not finish within \(Int(waitLimit)) s of the source's end: later transcripts are lost", source: eos.sourceID, context: context)
                }
            }
            emitFinished(source: eos.sourceID, emit: emit)
            state.withLock { _ = $0.coverage.removeValue(forKey: eos.sourceID) }
            started.remove(eos.sourceID)
            emit(item)
        default:
            emitFinished(source: nil, emit: emit)
            emit(item)
        }
    }

    /// A source's first frame: starts reading its audio, or says why there will be none.
    private func begin(_ frame: Frame, context: any NodeContext) {
        guard let client else {
            if !saidDisabled {
                saidDisabled = true
                say("no speech model server configured (endpoint is empty): no transcripts", source: frame.sourceID, context: context)
            }
            return
        }
        let feed: AudioFeed
        if let id = frame.metadata[VideoSourceNode.audioTapKey] {
            guard let tap = AudioTap.find(id) else {
                say("the live source's audio is not reachable from this process: no transcripts", source: frame.sourceID, context: context)
                return
            }
            tap.want()
            feed = .live(tap)
        } else if let url = frame.metadata[VideoSourceNode.urlKey], !SourceOptions.isLiveURL(url) {
            feed = .file(url)
        } else {
            say("the source's media is not known (frames from a link or a generator): no transcripts", source: frame.sourceID, context: context)
            return
        }
        state.withLock { $0.coverage[frame.sourceID] = SpeechCoverage(start: -.infinity) }
        running[frame.sourceID] = start(feed, source: frame.sourceID, client: client, context: context)
    }

    /// Where a source's audio comes from: a file's track, read ahead of the frames on its own;
    /// or a live stream's, from the source's demuxer as it arrives.
    enum AudioFeed: Sendable {
        case file(String)
        case live(AudioTap)
    }

    /// The audio blocks of a feed in order, on the source's clock; nil at its end.
    private func blocks(_ feed: AudioFeed, sampleRate: Int, source: String, context: any NodeContext) throws -> () async throws -> AudioTap.Block? {
        switch feed {
        case .file(let url):
            guard let reader = try AudioReader(url: url, sampleRate: sampleRate) else {
                say("the source has no audio track: no transcripts", source: source, context: context)
                return { nil }
            }
            var position = reader.startSeconds
            return {
                guard let samples = try reader.read() else { return nil }
                defer { position += Double(samples.count) / Double(sampleRate) }
                return AudioTap.Block(start: position, samples: samples)
            }
        case .live(let tap):
            var ready: [AudioTap.Block] = []
            return { [self] in
                while ready.isEmpty {
                    let taken = tap.take()
                    ready = taken.blocks
                    if taken.droppedSeconds > 0 {
                        say(String(format: "transcribe fell behind the live audio: %.1f s were dropped untranscribed", taken.droppedSeconds), source: source, context: context)
                    }
                    // No track (or one that cannot be decoded): said once, and the feed ends,
                    // so the audio counts as heard and captions downstream stop waiting for it.
                    switch taken.track {
                    case .none:
                        say("the source has no audio track: no transcripts", source: source, context: context)
                        return nil
                    case .broken(let why):
                        say("the live source's audio cannot be decoded: \(why); no transcripts", source: source, context: context)
                        return nil
                    case .unknown, .present:
                        break
                    }
                    if ready.isEmpty {
                        if taken.finished || Task.isCancelled { return nil }
                        try await Task.sleep(for: .milliseconds(50))
                    }
                }
                return ready.removeFirst()
            }
        }
    }

    /// Reads, chunks and sends one source's audio; answers land in `state.finished`.
    private func start(_ feed: AudioFeed, source: String, client: ModelServerClient, context: any NodeContext) -> Task<Void, Never> {
        let settings = chunking, model = model, language = language, terms = terms, concurrency = concurrency, cache = cache
        let endpoint = client.settings.url("/audio/transcriptions")
        return Task.detached(executorPreference: executor) { [self] in
            // However it ends, the whole track counts as heard then: nothing more will come.
            defer { cover(source) { $0.finish() } }
            let next: () async throws -> AudioTap.Block?
            do {
                next = try blocks(feed, sampleRate: settings.sampleRate, source: source, context: context)
            } catch {
                say("cannot read the source's audio: \(error)", source: source, context: context)
                return
            }
            // Chunks are sent as they are cut, at most `concurrency` at once, so an hour of
            // audio is never held whole (it would be 230 MB of 16 kHz floats).
            await withTaskGroup(of: Void.self) { group in
                var inFlight = 0, sent = 0
                func send(_ chunk: SpeechChunker.Chunk, offset: Double) async {
                    if inFlight >= concurrency {
                        await group.next()
                        inFlight -= 1
                    }
                    inFlight += 1
                    let id = sent
                    sent += 1
                    let start = offset + chunk.start, end = offset + chunk.end
                    cover(source) { $0.sent(id, start: start) }
                    group.addTask {
                        let audio = WAVFile.bytes(chunk.samples, sampleRate: chunk.sampleRate)
                        let key = ResponseCache.key(endpoint: endpoint, model: model, prompt: "language=" + (language ?? ""), contentHashes: [ResponseCache.hash(audio)])
                        var provenance = [Provenance(name: model, version: "asr@" + client.settings.host)]
                        var answer = cache?.get(key, as: AudioTranscriptions.Answer.self)
                        if answer != nil {
                            provenance.append(Provenance(name: "asr-cache", version: "hit"))
                        } else {
                            let outcome = await client.transcribe(AudioTranscriptions.Request(model: model, audio: audio, language: language))
                            answer = outcome.answer
                            if let answer { cache?.put(key, answer) } else {
                                self.say(String(format: "speech server: %@; %.1f–%.1f s is not transcribed", outcome.failure ?? "no answer", start, end), source: source, context: context)
                            }
                        }
                        let record = answer.map { Self.record($0, source: source, start: start, end: end, terms: terms, provenance: provenance) }
                        self.state.withLock {
                            if let record { $0.finished.append(.record(record)) }
                            $0.coverage[source]?.answered(id)
                        }
                    }
                }
                // A jump in the blocks' times (a live source lost and back) ends a chunk: no
                // chunk spans audio that was never heard.
                var chunker = SpeechChunker(settings: settings)
                var offset: Double?, expected = 0.0
                do {
                    while let block = try await next() {
                        if let current = offset, abs(block.start - expected) > 0.5 {
                            for chunk in chunker.finish() { await send(chunk, offset: current) }
                            chunker = SpeechChunker(settings: settings)
                            offset = nil
                        }
                        let base = offset ?? block.start
                        offset = base
                        for chunk in chunker.push(block.samples) { await send(chunk, offset: base) }
                        expected = block.start + Double(block.samples.count) / Double(settings.sampleRate)
                        let through = base + chunker.decidedThrough
                        cover(source) { $0.decided(through: through) }
                    }
                } catch is CancellationError {
                } catch {
                    say("the audio track broke off: \(error); what was read is transcribed", source: source, context: context)
                }
                if let offset { for chunk in chunker.finish() { await send(chunk, offset: offset) } }
            }
        }
    }

    private func cover(_ source: String, _ change: (inout SpeechCoverage) -> Void) {
        state.withLock { state in
            guard var coverage = state.coverage[source] else { return }
            change(&coverage)
            state.coverage[source] = coverage
        }
    }

    /// A transcript record from a server's answer about the chunk `[start, end]`.
    static func record(_ answer: AudioTranscriptions.Answer, source: String, start: Double, end: Double, terms: TermMask, provenance: [Provenance]) -> Record {
        let (text, masked) = terms.apply(answer.text)
        let segments = answer.segments.map {
            Transcript.Segment(start: start + $0.start, end: min(end, start + $0.end), text: terms.apply($0.text).text)
        }
        return Record(.transcript(Transcript(text: text, maskedTerms: masked, segments: segments, language: answer.language)),
                      sourceID: source, start: start, end: end, provenance: provenance)
    }

    private func say(_ message: String, source: String, context: any NodeContext) {
        context.post(StatusEvent(.error(NodeFailure(node: "transcribe", message: message, fatal: false)), sourceID: source, wallClock: context.clock.now()))
    }

    /// Emits the transcripts that are in; returns how far `source`'s audio is heard (nil when
    /// it is not being transcribed).
    @discardableResult
    private func emitFinished(source: String?, emit: (Item) -> Void) -> Double? {
        let (done, heard) = state.withLock { state -> ([Item], Double?) in
            defer { state.finished.removeAll() }
            return (state.finished, source.flatMap { state.coverage[$0]?.heardThrough })
        }
        done.forEach(emit)
        return heard
    }
}
