import Foundation
import SightlineCore
import SightlineGraph
import SightlineMedia
import SightlineModelServers
import Synchronization

/// `vlm_captions`: captions from a vision-language model the user runs (vLLM, llama.cpp's
/// server, Ollama, a hosted API) over the OpenAI-compatible `/v1/chat/completions`. For each
/// built-in caption from the `captions` node upstream (a shot, or a live window) it sends 1–4
/// frames of that span as JPEG with a prompt holding the built-in evidence, and publishes the
/// answer as the caption, with provenance (model, endpoint host, prompt template hash, frame
/// hashes). Frames are never held: they pass on at once and captions go out when the server
/// answers, late and marked by their wall clock. On a timeout, an error or an unreadable answer
/// (after the retries `RetryPolicy` allows) the built-in caption goes out marked
/// `vlm-fallback` with the reason, and the status topic says why. Answers are cached on disk
/// by frames and prompt, so a rerun costs nothing. Without an endpoint the node passes
/// everything on and says so once.
public final class VLMCaptionsNode: NodeProcessor, @unchecked Sendable {
    public static let defaultTemplate = """
    You see {frame_count} frame(s) from {time_span} of a video. An automatic system noted: {builtin}
    Labels it saw: {labels}. On-screen text: {text}. Speech: {speech}.
    Describe what happens in one or two plain sentences. Name people, objects and actions you can see; do not guess names.
    """

    private let client: ModelServerClient?
    private let model: String
    private let template: String
    private let templateHash: String
    private let framesPerCaption: Int
    private let terms: TermMask
    private let cache: ResponseCache?
    private let workshop: PictureWorkshop
    private let gate: RequestGate
    /// Per source, the frames of the current span kept to choose from, each JPEG-encoded off
    /// the pipeline's thread as it arrives: a caption then waits for no encoding.
    private var kept: [String: RepresentativeFrames<PreparedPicture>] = [:]
    private let finished = Mutex<[Finished]>([])
    private var inFlight: [String: Int] = [:]
    private var lastNow = 0.0
    private var saidDisabled = false
    private let waitLimit: Double

    struct Finished: Sendable {
        var builtin: Record
        var outcome: ServerOutcome<ChatCompletions.Answer>
        var frameHashes: [(time: Double, hash: String)]
        var cacheKey: String
    }

    public static let descriptor = NodeDescriptor(
        name: "vlm_captions",
        description: "Captions from your vision-language model server (OpenAI-compatible chat completions with images), with provenance, a disk cache and the built-in caption as fallback; frames never wait.",
        role: .transform, inputs: .any, outputs: .any,
        options: [
            OptionSpec("endpoint", .string, default: .string(""), help: "the server's API base, e.g. http://127.0.0.1:8000/v1 (vLLM, llama.cpp, Ollama's /v1); empty: built-in captions only"),
            OptionSpec("model", .string, default: .string("default"), help: "the model name the server serves"),
            OptionSpec("api_key_env", .string, default: .string("SIGHTLINE_VLM_API_KEY"), help: "environment variable holding the API key (sent as a Bearer token); never put the key in the pipeline file"),
            OptionSpec("api_key_file", .inputFile, default: .string(""), help: "a file holding the API key (instead of the environment variable)"),
            OptionSpec("prompt", .inputFile, default: .string(""), help: "prompt template file: {builtin}, {labels}, {text}, {speech}, {time_span}, {frame_count} are filled in; empty: the built-in template"),
            OptionSpec("frames", .int, default: .int(3), min: 1, max: 4, help: "frames sent per caption, spread over its span"),
            OptionSpec("max_frame_size", .int, default: .int(768), min: 64, max: 4096, help: "frames are scaled down to at most this width before sending"),
            OptionSpec("timeout", .double, default: .double(30), min: 0.1, max: 600, help: "seconds one attempt may take"),
            OptionSpec("retries", .int, default: .int(2), min: 0, max: 10, help: "attempts after the first (5xx, 429, timeouts, dropped connections), with growing delays and jitter"),
            OptionSpec("concurrency", .int, default: .int(2), min: 1, max: 64, help: "requests in flight at once"),
            OptionSpec("cache", .outputPath, default: .string("vlm-cache"), help: "folder of cached answers (relative to the output folder); empty: no cache"),
            OptionSpec("policy", .inputFile, default: .string(""), help: "moderation policy whose text terms are masked in the answers, as in built-in captions",
                       checkFile: { _ = try ModerationPolicy.load(path: $0) }),
        ],
        contract: NodeContract(needs: [.init(anyOf: [.captions], hint: "add a captions node before it: its caption is the evidence sent and the fallback")],
                               produces: [.init(.captions)]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(try VLMCaptionsNode(options: options))
    }

    init(options: NodeOptions) throws {
        (client, waitLimit) = try modelServerClient(options, defaultTimeout: 30)
        model = options.string("model") ?? "default"
        if let path = options.string("prompt"), !path.isEmpty {
            template = try String(contentsOfFile: path, encoding: .utf8)
        } else {
            template = Self.defaultTemplate
        }
        templateHash = ResponseCache.hash(Data(template.utf8))
        framesPerCaption = options.int("frames") ?? 3
        terms = try TermMask(policy: options.string("policy"))
        cache = responseCache(options)
        let side = options.int("max_frame_size") ?? 768
        workshop = PictureWorkshop(maxWidth: side)
        gate = RequestGate(permits: options.int("concurrency") ?? 2)
    }

    /// The prompt for one caption: the template with the built-in evidence filled in.
    static func prompt(_ template: String, caption: Caption, start: Double, end: Double, frameCount: Int) -> String {
        func clock(_ t: Double) -> String { String(format: "%d:%04.1f", Int(t) / 60, t.truncatingRemainder(dividingBy: 60)) }
        let labels = caption.labels.prefix(5).map { String(format: "%@ (%.0f%%)", $0.name, $0.probability * 100) }.joined(separator: ", ")
        let text = caption.onScreenText.isEmpty ? "none" : caption.onScreenText.map { "\"\($0)\"" }.joined(separator: "; ")
        // The built-in caption quotes speech briefly; its evidence holds the segments' text.
        let said = caption.phrases.filter { $0.kind == .speech }.flatMap(\.evidence).joined(separator: " ")
        return template
            .replacingOccurrences(of: "{builtin}", with: caption.text)
            .replacingOccurrences(of: "{labels}", with: labels.isEmpty ? "none" : labels)
            .replacingOccurrences(of: "{text}", with: text)
            .replacingOccurrences(of: "{speech}", with: said.isEmpty ? "none" : said)
            .replacingOccurrences(of: "{time_span}", with: "\(clock(start))–\(clock(end))")
            .replacingOccurrences(of: "{frame_count}", with: String(frameCount))
    }

    public var flushDeadline: Double? {
        inFlight.values.contains { $0 > 0 } ? lastNow + 0.05 : nil
    }

    public func flush(context: any NodeContext, emit: (Item) -> Void) throws {
        lastNow = context.clock.now()
        emitFinished(context: context, emit: emit)
    }

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        lastNow = context.clock.now()
        defer { emitFinished(context: context, emit: emit) }
        guard let client else {
            if !saidDisabled, let source = item.sourceID {
                saidDisabled = true
                context.post(StatusEvent(.error(NodeFailure(node: "vlm_captions", message: "no model server configured (endpoint is empty): built-in captions only", fatal: false)),
                                         sourceID: source, wallClock: context.clock.now()))
            }
            emit(item)
            return
        }
        switch item {
        case .frame(let frame):
            emit(item)   // frames never wait for the server
            var frames = kept[frame.sourceID] ?? RepresentativeFrames(capacity: 24)
            if frames.wants(frame.seconds), let prepared = workshop.submit(frame) {
                frames.offer(frame.seconds, prepared)
            }
            kept[frame.sourceID] = frames
        case .record(let record):
            guard case .caption(let caption) = record.value else {
                emit(item)
                return
            }
            ask(about: record, caption: caption, client: client, context: context, emit: emit)
        case .endOfStream(let eos):
            // The source's answers go out before its end (sinks close a file's results at it).
            let deadline = Date().addingTimeInterval(waitLimit)
            while (inFlight[eos.sourceID] ?? 0) > 0 && Date() < deadline {
                emitFinished(context: context, emit: emit)
                Thread.sleep(forTimeInterval: 0.01)
            }
            kept[eos.sourceID] = nil
        case .status:
            emit(item)
        }
    }

    private func ask(about record: Record, caption: Caption, client: ModelServerClient, context: any NodeContext, emit: (Item) -> Void) {
        var frames = kept[record.sourceID] ?? RepresentativeFrames(capacity: 24)
        let inside = frames.kept.filter { $0.time >= record.start - 1e-6 && $0.time <= record.end + 1e-6 }
        _ = frames.choose(start: record.start, end: record.end)
        kept[record.sourceID] = frames
        // Spread over the span: first, last and evenly between.
        let count = min(framesPerCaption, inside.count)
        let picks = count <= 1 ? Array(inside.prefix(count))
            : (0..<count).map { inside[Int((Double($0) * Double(inside.count - 1) / Double(count - 1)).rounded())] }
        var images: [Data] = [], hashes: [(Double, String)] = []
        for pick in picks {
            guard let picture = pick.payload.wait() else { continue }
            images.append(picture.jpeg)
            hashes.append((pick.time, picture.hash))
        }
        guard !images.isEmpty else {
            emit(.record(fallback(record, reason: "no frame of the span was kept")))
            return
        }
        let prompt = Self.prompt(template, caption: caption, start: record.start, end: record.end, frameCount: images.count)
        let key = ResponseCache.key(endpoint: client.settings.url("/chat/completions"), model: model, prompt: prompt, contentHashes: hashes.map(\.1))
        if let answer = cache?.get(key, as: ChatCompletions.Answer.self) {
            let outcome = ServerOutcome(answer: answer, failure: nil, attempts: 0, serverSeconds: 0, backoffSeconds: 0)
            emit(.record(answered(Finished(builtin: record, outcome: outcome, frameHashes: hashes, cacheKey: key), answer: answer, cached: true)))
            return
        }
        inFlight[record.sourceID, default: 0] += 1
        let request = ChatCompletions.Request(model: model, prompt: prompt, images: images)
        let gate = self.gate
        Task.detached { [self] in
            await gate.acquire()
            let outcome = await client.chat(request)
            await gate.release()
            self.finished.withLock { $0.append(Finished(builtin: record, outcome: outcome, frameHashes: hashes, cacheKey: key)) }
        }
    }

    private func emitFinished(context: any NodeContext, emit: (Item) -> Void) {
        let done = finished.withLock { list -> [Finished] in
            defer { list.removeAll() }
            return list
        }
        for item in done {
            inFlight[item.builtin.sourceID, default: 1] -= 1
            if let answer = item.outcome.answer {
                cache?.put(item.cacheKey, answer)
                emit(.record(answered(item, answer: answer, cached: false)))
            } else {
                let reason = item.outcome.failure ?? "no answer"
                context.post(StatusEvent(.error(NodeFailure(node: "vlm_captions", message: "model server: \(reason); the built-in caption went out instead", fatal: false)),
                                         sourceID: item.builtin.sourceID, wallClock: context.clock.now()))
                emit(.record(fallback(item.builtin, reason: reason)))
            }
        }
    }

    private func answered(_ item: Finished, answer: ChatCompletions.Answer, cached: Bool) -> Record {
        guard case .caption(let builtin) = item.builtin.value else { return item.builtin }
        let (text, masked) = terms.apply(answer.text)
        let caption = Caption(text: text, maskedTerms: masked, repeated: false, labels: builtin.labels, onScreenText: builtin.onScreenText,
                              moreText: builtin.moreText, phrases: [])
        var record = item.builtin
        record.value = .caption(caption)
        record.provenance = [Provenance(name: answer.model ?? model, version: "vlm@" + (client?.settings.host ?? ""), sha256: templateHash)]
            + item.frameHashes.map { Provenance(name: "frame", version: String(format: "%.3f", $0.time), sha256: $0.hash) }
            + (cached ? [Provenance(name: "vlm-cache", version: "hit")] : [])
        return record
    }

    private func fallback(_ record: Record, reason: String) -> Record {
        var record = record
        record.provenance.append(Provenance(name: "vlm-fallback", version: reason))
        return record
    }
}

/// Scales kept frames down and JPEG-encodes them on one background queue, in arrival order,
/// so neither the frame path nor a caption waits for the encoder (about 3 ms per 720p frame
/// here). When it falls behind by `backlog` frames, new frames are not kept (they were only
/// candidates to send) rather than queueing without bound.
final class PictureWorkshop: @unchecked Sendable {
    private let queue = DispatchQueue(label: "sightline.vlm.jpeg", qos: .utility)
    private let encoder: JPEGEncoder   // used on `queue` only
    private let waiting = Mutex(0)
    private let backlog: Int

    init(maxWidth: Int, quality: Int = 3, backlog: Int = 4) {
        encoder = JPEGEncoder(maxWidth: maxWidth, qscale: quality)
        self.backlog = backlog
    }

    func submit(_ frame: Frame) -> PreparedPicture? {
        let accepted = waiting.withLock { count -> Bool in
            guard count < backlog else { return false }
            count += 1
            return true
        }
        guard accepted else { return nil }
        let prepared = PreparedPicture()
        queue.async { [self] in
            let jpeg = try? encoder.encode(frame.pixels, width: frame.width, height: frame.height, format: frame.pixelFormat)
            prepared.fulfil(jpeg.map { ($0, ResponseCache.hash($0)) })
            waiting.withLock { $0 -= 1 }
        }
        return prepared
    }
}

/// One kept frame's JPEG and its hash, filled in once by the workshop.
final class PreparedPicture: Sendable {
    private let ready = DispatchSemaphore(value: 0)
    private let result = Mutex<(jpeg: Data, hash: String)?>(nil)

    func fulfil(_ picture: (jpeg: Data, hash: String)?) {
        result.withLock { $0 = picture }
        ready.signal()
    }

    /// The picture, once encoded (nil if it could not be). Waits at most `limit` seconds: the
    /// workshop holds a few frames at most, so this is one encode or none.
    func wait(limit: Double = 5) -> (jpeg: Data, hash: String)? {
        guard ready.wait(timeout: .now() + limit) == .success else { return nil }
        ready.signal()   // later waiters pass at once
        return result.withLock { $0 }
    }
}

/// At most `permits` requests in flight; the rest wait their turn in order.
actor RequestGate {
    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(permits: Int) { free = max(1, permits) }

    func acquire() async {
        if free > 0 {
            free -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty { free += 1 } else { waiting.removeFirst().resume() }
    }
}

/// The client a model-server node's options describe (`endpoint`, `api_key_file` or
/// `api_key_env`, `timeout`, `retries`); nil when no endpoint is set. Also how long the end of
/// a source may wait for answers: every attempt and every back-off.
func modelServerClient(_ options: NodeOptions, defaultTimeout: Double) throws -> (client: ModelServerClient?, waitLimit: Double) {
    let endpoint = options.string("endpoint") ?? ""
    var key: String?
    if let file = options.string("api_key_file"), !file.isEmpty {
        key = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    } else if let name = options.string("api_key_env"), !name.isEmpty {
        key = ProcessInfo.processInfo.environment[name]
    }
    let retries = options.int("retries") ?? 2, timeout = options.double("timeout") ?? defaultTimeout
    let waitLimit = timeout * Double(retries + 1) + 8 * Double(retries) + 5
    guard !endpoint.isEmpty else { return (nil, waitLimit) }
    if let problem = ModelServerSettings.check(endpoint: endpoint) {
        throw SightlineError.invalidOption(name: "endpoint", value: endpoint, hint: problem)
    }
    return (ModelServerClient(settings: ModelServerSettings(endpoint: endpoint, apiKey: key, timeout: timeout, retry: RetryPolicy(retries: retries))), waitLimit)
}

/// The answer cache a model-server node's `cache` option names; nil when it is empty. A
/// default is not resolved by the validator (only written values are): relative means the
/// output folder.
func responseCache(_ options: NodeOptions) -> ResponseCache? {
    let folder = options.string("cache") ?? ""
    guard !folder.isEmpty else { return nil }
    return ResponseCache(folder: folder.hasPrefix("/") ? folder : options.outputDirectory + "/" + folder)
}
