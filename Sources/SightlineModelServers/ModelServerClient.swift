import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Where a model server is and how to talk to it. The API key comes from an environment
/// variable or a file (never from the pipeline file).
public struct ModelServerSettings: Sendable {
    /// The API's base, e.g. `http://127.0.0.1:8000/v1` (a full `…/chat/completions` URL works too).
    public var endpoint: String
    public var apiKey: String?
    /// Seconds one attempt may take, answer included.
    public var timeout: Double
    public var retry: RetryPolicy
    /// Largest answer body read.
    public var maxResponseBytes: Int

    public init(endpoint: String, apiKey: String? = nil, timeout: Double = 30, retry: RetryPolicy = RetryPolicy(), maxResponseBytes: Int = 4 << 20) {
        self.endpoint = endpoint
        self.apiKey = apiKey
        self.timeout = timeout
        self.retry = retry
        self.maxResponseBytes = maxResponseBytes
    }

    /// `base + path` unless the endpoint already names the path.
    public func url(_ path: String) -> String {
        let trimmed = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        return trimmed.hasSuffix(path) ? trimmed : trimmed + path
    }

    /// The host the endpoint names (for provenance: the key and path are not published).
    public var host: String { URL(string: endpoint)?.host ?? endpoint }

    /// Checks a URL a user gave: http or https with a host.
    public static func check(endpoint: String) -> String? {
        guard let url = URL(string: endpoint), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil else {
            return "'\(endpoint)' is not an http(s) URL with a host, e.g. http://127.0.0.1:8000/v1"
        }
        return nil
    }
}

/// What happened to one request, for the status topic and the benchmark.
public struct ServerOutcome<Answer: Sendable>: Sendable {
    public var answer: Answer?
    /// Why there is no answer (after the retries the policy allowed).
    public var failure: String?
    public var attempts: Int
    /// Seconds spent waiting on the server (all attempts), and in back-off between them.
    public var serverSeconds: Double
    public var backoffSeconds: Double

    public init(answer: Answer?, failure: String?, attempts: Int, serverSeconds: Double, backoffSeconds: Double) {
        self.answer = answer
        self.failure = failure
        self.attempts = attempts
        self.serverSeconds = serverSeconds
        self.backoffSeconds = backoffSeconds
    }
}

/// Posts to an OpenAI-compatible server with AsyncHTTPClient (its shared client and event
/// loops), retrying as `RetryPolicy` says. Never throws: every way a server can fail ends in
/// a `ServerOutcome` with the reason.
public struct ModelServerClient: Sendable {
    public let settings: ModelServerSettings

    public init(settings: ModelServerSettings) {
        self.settings = settings
    }

    public func chat(_ request: ChatCompletions.Request) async -> ServerOutcome<ChatCompletions.Answer> {
        let body: Data
        do {
            body = try request.body()
        } catch {
            return ServerOutcome(answer: nil, failure: "cannot encode the request: \(error)", attempts: 0, serverSeconds: 0, backoffSeconds: 0)
        }
        return await exchange(path: "/chat/completions", body: body, contentType: "application/json", read: ChatCompletions.answer(from:))
    }

    public func transcribe(_ request: AudioTranscriptions.Request) async -> ServerOutcome<AudioTranscriptions.Answer> {
        await exchange(path: "/audio/transcriptions", body: request.body(), contentType: request.contentType, read: AudioTranscriptions.answer(from:))
    }

    /// Posts until an answer is read or the retry policy gives up.
    func exchange<Answer>(path: String, body: Data, contentType: String, read: (Data) throws -> Answer) async -> ServerOutcome<Answer> {
        var outcome = ServerOutcome<Answer>(answer: nil, failure: nil, attempts: 0, serverSeconds: 0, backoffSeconds: 0)
        while true {
            outcome.attempts += 1
            let started = Date()
            let result = await post(path: path, body: body, contentType: contentType)
            outcome.serverSeconds += Date().timeIntervalSince(started)
            let failure: RetryPolicy.Failure
            switch result {
            case .success(let data):
                do {
                    outcome.answer = try read(data)
                    return outcome
                } catch {
                    failure = .malformed("\(error)")
                }
            case .failure(let f):
                failure = f
            }
            switch settings.retry.decide(after: outcome.attempts, failed: failure, unit: Double.random(in: 0..<1)) {
            case .giveUp(let reason):
                outcome.failure = reason
                return outcome
            case .retry(let delay):
                outcome.backoffSeconds += delay
                try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
            }
        }
    }

    /// One attempt: the body of a 200, or how it failed.
    func post(path: String, body: Data, contentType: String) async -> Result<Data, RetryPolicy.Failure> {
        var request = HTTPClientRequest(url: settings.url(path))
        request.method = .POST
        request.headers.add(name: "Content-Type", value: contentType)
        request.headers.add(name: "Accept", value: "application/json")
        if let key = settings.apiKey, !key.isEmpty { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(Int64(settings.timeout * 1000)))
            let bytes = try await response.body.collect(upTo: settings.maxResponseBytes)
            guard response.status == .ok else {
                return .failure(.status(Int(response.status.code), retryAfter: RetryPolicy.retryAfterSeconds(response.headers.first(name: "Retry-After"))))
            }
            return .success(Data(bytes.readableBytesView))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            return .failure(.timeout)
        } catch let error as NIOTooManyBytesError {
            return .failure(.malformed("the answer is larger than \(settings.maxResponseBytes) bytes (\(error))"))
        } catch {
            return .failure(.connection("\(error)"))
        }
    }
}
