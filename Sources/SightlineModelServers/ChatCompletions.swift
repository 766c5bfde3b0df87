import Foundation

/// The OpenAI-compatible `/v1/chat/completions` request with images as content parts (data
/// URLs), and the reading of its answer. vLLM, llama.cpp's server, Ollama and hosted APIs
/// all take this form.
public enum ChatCompletions {
    public struct Request: Sendable {
        public var model: String
        public var prompt: String
        /// JPEG pictures, sent in order after the text.
        public var images: [Data]
        public var maxTokens: Int
        public var temperature: Double

        public init(model: String, prompt: String, images: [Data], maxTokens: Int = 200, temperature: Double = 0.2) {
            self.model = model
            self.prompt = prompt
            self.images = images
            self.maxTokens = maxTokens
            self.temperature = temperature
        }

        /// The JSON body. Written out by hand around the pictures: base64 needs no escaping, and
        /// JSONSerialization took about 2 ms per 60 kB picture here (it escapes every '/').
        /// Strings go through JSONSerialization, which escapes them correctly.
        public func body() throws -> Data {
            func quoted(_ text: String) throws -> Data {
                try JSONSerialization.data(withJSONObject: text, options: [.fragmentsAllowed, .withoutEscapingSlashes])
            }
            var out = Data()
            out.reserveCapacity(256 + prompt.utf8.count + images.reduce(0) { $0 + $1.count * 4 / 3 + 80 })
            out.append(contentsOf: Array(#"{"max_tokens":\#(maxTokens),"messages":[{"content":[{"text":"#.utf8))
            out.append(try quoted(prompt))
            out.append(contentsOf: Array(#","type":"text"}"#.utf8))
            for image in images {
                out.append(contentsOf: Array(#",{"image_url":{"url":"data:image/jpeg;base64,"#.utf8))
                out.append(image.base64EncodedData())
                out.append(contentsOf: Array(#""},"type":"image_url"}"#.utf8))
            }
            out.append(contentsOf: Array(#"],"role":"user"}],"model":"#.utf8))
            out.append(try quoted(model))
            out.append(contentsOf: Array(#","stream":false,"temperature":"#.utf8))
            guard temperature.isFinite else { throw Unreadable(description: "temperature \(temperature) is not a number") }
            out.append(contentsOf: Array(String(temperature).utf8))
            out.append(contentsOf: Array("}".utf8))
            return out
        }
    }

    public struct Answer: Sendable, Equatable, Codable {
        public var text: String
        /// The model the server says answered (may differ from the one asked for).
        public var model: String?

        public init(text: String, model: String?) {
            self.text = text
            self.model = model
        }
    }

    public struct Unreadable: Error, CustomStringConvertible {
        public var description: String
    }

    /// The first choice's message text; an error when the body is not such an answer or the
    /// text is empty.
    public static func answer(from body: Data) throws -> Answer {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw Unreadable(description: "not a JSON object (\(body.count) bytes)")
        }
        guard let choices = object["choices"] as? [[String: Any]], let first = choices.first,
              let message = first["message"] as? [String: Any] else {
            throw Unreadable(description: "no choices[0].message")
        }
        let text: String
        if let plain = message["content"] as? String {
            text = plain
        } else if let parts = message["content"] as? [[String: Any]] {
            text = parts.compactMap { $0["text"] as? String }.joined(separator: " ")
        } else {
            throw Unreadable(description: "choices[0].message.content is neither text nor parts")
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw Unreadable(description: "an empty answer") }
        return Answer(text: trimmed, model: object["model"] as? String)
    }
}
