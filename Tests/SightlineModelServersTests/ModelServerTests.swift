import Foundation
import SightlineModelServers
import SightlineTestSupport
import Testing

/// The retry policy as a timeline, and the client against a local server that answers as
/// model servers do — and fails as they do. Every failure ends in an answer or a reason,
/// never a hang or a crash.
@Suite struct RetryPolicyTests {
    let policy = RetryPolicy(retries: 3, initialDelay: 0.5, maximumDelay: 4, jitter: 0.2, maximumRetryAfter: 30)

    @Test func delaysGrowWithJitterAndStopAfterTheRetries() {
        var delays: [Double] = []
        for attempt in 1...4 {
            switch policy.decide(after: attempt, failed: .status(503, retryAfter: nil), unit: 0.5) {
            case .retry(let after): delays.append(after)
            case .giveUp(let reason): #expect(attempt == 4 && reason.contains("after 4 attempts"))
            }
        }
        #expect(delays == [0.5, 1, 2])
        // Jitter spreads ±20 %.
        if case .retry(let low) = policy.decide(after: 3, failed: .timeout, unit: 0) { #expect(abs(low - 1.6) < 1e-9) }
        if case .retry(let high) = policy.decide(after: 3, failed: .timeout, unit: 0.999999) { #expect(abs(high - 2.4) < 1e-5) }
        // The cap holds.
        #expect(RetryPolicy(retries: 20, initialDelay: 0.5, maximumDelay: 4, jitter: 0).decide(after: 12, failed: .timeout, unit: 0) == .retry(after: 4))
    }

    @Test func aServerThatSaysWhenIsBelievedWithinTheCap() {
        #expect(policy.decide(after: 1, failed: .status(429, retryAfter: 2), unit: 0.9) == .retry(after: 2))
        guard case .giveUp(let reason) = policy.decide(after: 1, failed: .status(429, retryAfter: 120), unit: 0) else {
            Issue.record("a two-minute Retry-After was waited for")
            return
        }
        #expect(reason.contains("Retry-After"))
        // 429 without the header backs off like a 5xx.
        #expect(policy.decide(after: 1, failed: .status(429, retryAfter: nil), unit: 0.5) == .retry(after: 0.5))
        #expect(RetryPolicy.retryAfterSeconds(" 3 ") == 3 && RetryPolicy.retryAfterSeconds("Wed, 21 Oct 2015 07:28:00 GMT") == nil)
    }

    @Test func refusalsAndUnreadableAnswersAreNotRetried() {
        for code in [400, 401, 403, 404, 413, 422] {
            guard case .giveUp = policy.decide(after: 1, failed: .status(code, retryAfter: nil), unit: 0) else {
                Issue.record("HTTP \(code) was retried")
                continue
            }
        }
        guard case .giveUp = policy.decide(after: 1, failed: .malformed("x"), unit: 0) else { Issue.record("malformed retried"); return }
        guard case .retry = policy.decide(after: 1, failed: .status(408, retryAfter: nil), unit: 0) else { Issue.record("408 not retried"); return }
        guard case .retry = policy.decide(after: 1, failed: .connection("reset"), unit: 0) else { Issue.record("a dropped connection not retried"); return }
    }
}

@Suite struct ModelServerClientTests {
    let picture = Data([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9])

    func client(_ server: FakeModelServer, timeout: Double = 5, retries: Int = 2, key: String? = "sk-test") -> ModelServerClient {
        ModelServerClient(settings: ModelServerSettings(endpoint: server.url, apiKey: key, timeout: timeout,
                                                        retry: RetryPolicy(retries: retries, initialDelay: 0.05, maximumDelay: 0.2)))
    }

    @Test func theRequestHasTheFormServersExpectAndTheAnswerIsRead() async throws {
        let server = try FakeModelServer { _, _ in .answer("A man rides a bicycle past a parked taxi.") }
        defer { server.stop() }
        let outcome = await client(server).chat(.init(model: "qwen2-vl", prompt: "Describe.", images: [picture, picture]))
        #expect(outcome.answer?.text == "A man rides a bicycle past a parked taxi." && outcome.answer?.model == "qwen2-vl" && outcome.attempts == 1)
        let request = try #require(server.requests.first)
        #expect(request.method == "POST" && request.path == "/v1/chat/completions")
        #expect(request.header("Authorization") == "Bearer sk-test" && request.header("Content-Type") == "application/json")
        let json = try #require(request.json)
        #expect(json["model"] as? String == "qwen2-vl")
        let messages = try #require(json["messages"] as? [[String: Any]])
        let parts = try #require(messages.first?["content"] as? [[String: Any]])
        #expect(parts.first?["type"] as? String == "text" && parts.first?["text"] as? String == "Describe.")
        let images = parts.dropFirst().compactMap { ($0["image_url"] as? [String: Any])?["url"] as? String }
        #expect(images == Array(repeating: "data:image/jpeg;base64," + picture.base64EncodedString(), count: 2))
    }

    @Test func aNoKeyRequestSendsNoAuthorization() async throws {
        let server = try FakeModelServer { _, _ in .answer("ok") }
        defer { server.stop() }
        _ = await client(server, key: nil).chat(.init(model: "m", prompt: "p", images: [picture]))
        #expect(server.requests.first?.header("Authorization") == nil)
    }

    @Test func tooManyRequestsIsRetriedAfterTheServersDelay() async throws {
        let server = try FakeModelServer { _, n in n == 0 ? .status(429, headers: ["Retry-After": "1"]) : .answer("later") }
        defer { server.stop() }
        let started = Date()
        let outcome = await client(server).chat(.init(model: "m", prompt: "p", images: [picture]))
        #expect(outcome.answer?.text == "later" && outcome.attempts == 2 && outcome.backoffSeconds == 1)
        #expect(Date().timeIntervalSince(started) >= 0.95)
    }

    @Test func serverErrorsAreRetriedThenReported() async throws {
        let server = try FakeModelServer { _, _ in .status(500) }
        defer { server.stop() }
        let outcome = await client(server, retries: 2).chat(.init(model: "m", prompt: "p", images: [picture]))
        #expect(outcome.answer == nil && outcome.attempts == 3 && server.requests.count == 3)
        #expect(outcome.failure?.contains("HTTP 500") == true)
    }

    @Test func malformedAnswersFallBackAtOnce() async throws {
        for reply in [FakeModelServer.Reply.status(200, body: "{not json"), .status(200, body: "{\"choices\": []}"), .answer("   ")] {
            let server = try FakeModelServer { _, _ in reply }
            defer { server.stop() }
            let outcome = await client(server).chat(.init(model: "m", prompt: "p", images: [picture]))
            #expect(outcome.answer == nil && outcome.attempts == 1 && outcome.failure?.contains("unreadable") == true, "\(outcome)")
        }
    }

    @Test func aDroppedConnectionIsRetried() async throws {
        let server = try FakeModelServer { _, n in n == 0 ? .drop : .answer("second time") }
        defer { server.stop() }
        let outcome = await client(server).chat(.init(model: "m", prompt: "p", images: [picture]))
        #expect(outcome.answer?.text == "second time" && outcome.attempts == 2)
    }

    /// A server that takes ten minutes: the client gives up after its timeout instead. (The
    /// bound is loose on purpose: on 2 cores, synchronous suites running beside this one can
    /// hold every cooperative thread for minutes, which delays when this test resumes but
    /// not whether the request timed out.)
    @Test func aSlowServerTimesOutInsteadOfHanging() async throws {
        let server = try FakeModelServer { _, _ in .answer("far too late", delay: 600) }
        defer { server.stop() }
        let started = Date()
        let outcome = await client(server, timeout: 0.3, retries: 1).chat(.init(model: "m", prompt: "p", images: [picture]))
        #expect(outcome.answer == nil && outcome.failure?.contains("timed out") == true && outcome.attempts == 2, "\(outcome)")
        #expect(Date().timeIntervalSince(started) < 300)
    }

    @Test func aServerThatIsNotThereIsAReasonNotACrash() async throws {
        let settings = ModelServerSettings(endpoint: "http://127.0.0.1:9/v1", timeout: 1, retry: RetryPolicy(retries: 1, initialDelay: 0.01))
        let outcome = await ModelServerClient(settings: settings).chat(.init(model: "m", prompt: "p", images: [picture]))
        #expect(outcome.answer == nil && outcome.failure?.contains("connection") == true, "\(outcome)")
        #expect(ModelServerSettings.check(endpoint: "ftp://x") != nil && ModelServerSettings.check(endpoint: "http://h:1/v1") == nil)
    }

    @Test func theCacheKeepsAnswersByWhatWasAsked() throws {
        let folder = NSTemporaryDirectory() + "sightline-vlm-cache-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cache = ResponseCache(folder: folder)
        let key = ResponseCache.key(endpoint: "http://h/v1/chat/completions", model: "m", prompt: "p", contentHashes: ["a", "b"])
        #expect(cache.get(key, as: ChatCompletions.Answer.self) == nil)
        cache.put(key, ChatCompletions.Answer(text: "hello", model: "m"))
        #expect(cache.get(key, as: ChatCompletions.Answer.self)?.text == "hello")
        // Transcripts keep their segments; a damaged file is a miss, never a crash.
        let spoken = AudioTranscriptions.Answer(text: "hi there", segments: [.init(start: 0.5, end: 1.25, text: "hi there")], language: "en")
        cache.put("t", spoken)
        #expect(cache.get("t", as: AudioTranscriptions.Answer.self) == spoken)
        try Data("{\"text\": 3".utf8).write(to: URL(fileURLWithPath: folder + "/t.json"))
        #expect(cache.get("t", as: AudioTranscriptions.Answer.self) == nil)
        #expect(key != ResponseCache.key(endpoint: "http://h/v1/chat/completions", model: "m", prompt: "p", contentHashes: ["b", "a"]))
    }
}

@Suite struct ChatCompletionsBodyTests {
    /// The hand-written body says exactly what the plain JSONSerialization form says, for text
    /// that needs escaping (quotes, backslashes, newlines, control characters, non-ASCII).
    @Test func handWrittenBodyEqualsTheSerializedObject() throws {
        let prompt = "He said \"hi\" \\ then\nleft\t\u{1} — café 🚲 </script> a/b"
        let images = [Data([0xFF, 0xD8, 0xFF, 0x00, 0x3F, 0xBF]), Data((0..<300).map { UInt8($0 & 255) })]
        let request = ChatCompletions.Request(model: "org/model \"x\"", prompt: prompt, images: images, maxTokens: 77, temperature: 0.35)
        let parsed = try #require(try JSONSerialization.jsonObject(with: request.body()) as? NSDictionary)
        let content: [[String: Any]] = [["type": "text", "text": prompt]]
            + images.map { ["type": "image_url", "image_url": ["url": "data:image/jpeg;base64," + $0.base64EncodedString()]] }
        let reference: NSDictionary = [
            "model": "org/model \"x\"", "messages": [["role": "user", "content": content]],
            "max_tokens": 77, "temperature": 0.35, "stream": false,
        ]
        #expect(parsed == reference)
    }

    @Test func aTemperatureThatIsNotANumberIsRefused() {
        #expect(throws: (any Error).self) { try ChatCompletions.Request(model: "m", prompt: "p", images: [], temperature: .nan).body() }
    }
}

@Suite struct TranscriptionClientTests {
    let wav = Data("RIFF....WAVEfmt ".utf8) + Data((0..<200).map { UInt8($0) })

    func client(_ server: FakeModelServer, retries: Int = 1) -> ModelServerClient {
        ModelServerClient(settings: ModelServerSettings(endpoint: server.url, apiKey: "sk-asr", timeout: 3,
                                                        retry: RetryPolicy(retries: retries, initialDelay: 0.05, maximumDelay: 0.2)))
    }

    @Test func theFormHasTheFileModelAndFormatAndSegmentsAreRead() async throws {
        let server = try FakeModelServer { _, _ in
            .status(200, body: #"{"text": " Hello there. General Kenobi. ", "language": "english", "segments": [{"id": 0, "start": 0.0, "end": 1.2, "text": " Hello there."}, {"id": 1, "start": 1.5, "end": 2.75, "text": " General Kenobi."}]}"#)
        }
        defer { server.stop() }
        let outcome = await client(server).transcribe(.init(model: "whisper-large-v3", audio: wav, language: "en"))
        let answer = try #require(outcome.answer)
        #expect(answer.text == "Hello there. General Kenobi." && answer.language == "english")
        #expect(answer.segments == [.init(start: 0, end: 1.2, text: "Hello there."), .init(start: 1.5, end: 2.75, text: "General Kenobi.")])
        let request = try #require(server.requests.first)
        #expect(request.path == "/v1/audio/transcriptions" && request.header("Authorization") == "Bearer sk-asr")
        let form = try #require(request.form)
        #expect(form["file"]?.data == wav && form["file"]?.filename == "audio.wav" && form["file"]?.type == "audio/wav")
        #expect(form["model"].map { String(decoding: $0.data, as: UTF8.self) } == "whisper-large-v3")
        #expect(form["response_format"].map { String(decoding: $0.data, as: UTF8.self) } == "verbose_json")
        #expect(form["timestamp_granularities[]"].map { String(decoding: $0.data, as: UTF8.self) } == "segment")
        #expect(form["language"].map { String(decoding: $0.data, as: UTF8.self) } == "en")
    }

    @Test func aPlainJSONAnswerHasTextWithoutSegments() throws {
        let answer = try AudioTranscriptions.answer(from: Data(#"{"text": "just text"}"#.utf8))
        #expect(answer.text == "just text" && answer.segments.isEmpty)
    }

    @Test func malformedAnswersAreRefused() {
        for body in [#"{"segments": []}"#, #"{"text": "x", "segments": [{"start": 2, "end": 1, "text": "y"}]}"#, "[1]", "not json"] {
            #expect(throws: (any Error).self) { try AudioTranscriptions.answer(from: Data(body.utf8)) }
        }
    }

    @Test func a500IsRetriedAndAMalformedAnswerEndsInAFailure() async throws {
        let server = try FakeModelServer { _, n in n == 0 ? .status(500) : .status(200, body: #"{"text": "after a retry"}"#) }
        defer { server.stop() }
        let outcome = await client(server).transcribe(.init(model: "m", audio: wav))
        #expect(outcome.answer?.text == "after a retry" && outcome.attempts == 2)
        let broken = try FakeModelServer { _, _ in .status(200, body: #"{"txt": 1}"#) }
        defer { broken.stop() }
        let failed = await client(broken, retries: 0).transcribe(.init(model: "m", audio: wav))
        #expect(failed.answer == nil && failed.failure != nil)
    }
}
