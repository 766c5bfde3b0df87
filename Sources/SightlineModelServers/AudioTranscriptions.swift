import Foundation
import SightlineCore

/// The OpenAI-compatible `/v1/audio/transcriptions` request (multipart/form-data: the audio
/// file, the model, `verbose_json` with segment timestamps) and the reading of its answer.
/// faster-whisper servers, vLLM, whisper.cpp's server (`--inference-path
/// /v1/audio/transcriptions`) and hosted APIs take this form.
public enum AudioTranscriptions {
    public struct Request: Sendable {
        public var model: String
        /// A WAV file's bytes.
        public var audio: Data
        public var language: String?
        /// The multipart boundary: random per request unless a test fixes it.
        public var boundary: String

        public init(model: String, audio: Data, language: String? = nil, boundary: String = "sightline-" + UUID().uuidString) {
            self.model = model
            self.audio = audio
            self.language = language
            self.boundary = boundary
        }

        public var contentType: String { "multipart/form-data; boundary=\(boundary)" }

        public func body() -> Data {
            var out = Data()
            func field(_ name: String, _ value: String) {
                out.append(contentsOf: Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8))
            }
            out.append(contentsOf: Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"audio.wav\"\r\nContent-Type: audio/wav\r\n\r\n".utf8))
            out.append(audio)
            out.append(contentsOf: Array("\r\n".utf8))
            field("model", model)
            field("response_format", "verbose_json")
            field("timestamp_granularities[]", "segment")
            if let language, !language.isEmpty { field("language", language) }
            out.append(contentsOf: Array("--\(boundary)--\r\n".utf8))
            return out
        }
    }

    /// A segment's times are seconds from the chunk's start.
    public typealias Segment = Transcript.Segment

    public struct Answer: Sendable, Equatable, Codable {
        public var text: String
        /// Empty when the server gave only the text (`json` instead of `verbose_json`).
        public var segments: [Segment]
        public var language: String?

        public init(text: String, segments: [Segment] = [], language: String? = nil) {
            self.text = text
            self.segments = segments
            self.language = language
        }
    }

    /// The answer's text and segments; an error when it is not such an answer. An empty text
    /// is a valid answer (the chunk held no words).
    public static func answer(from body: Data) throws -> Answer {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw ChatCompletions.Unreadable(description: "not a JSON object (\(body.count) bytes)")
        }
        guard let text = object["text"] as? String else { throw ChatCompletions.Unreadable(description: "no \"text\"") }
        var segments: [Segment] = []
        for case let segment as [String: Any] in object["segments"] as? [Any] ?? [] {
            guard let start = (segment["start"] as? NSNumber)?.doubleValue, let end = (segment["end"] as? NSNumber)?.doubleValue,
                  start.isFinite, end.isFinite, start >= 0, end >= start, let words = segment["text"] as? String else {
                throw ChatCompletions.Unreadable(description: "a segment without a start ≤ end and text")
            }
            segments.append(Segment(start: start, end: end, text: words.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        return Answer(text: text.trimmingCharacters(in: .whitespacesAndNewlines), segments: segments, language: object["language"] as? String)
    }
}
