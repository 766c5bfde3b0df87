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

        public func body() throws -> Data {
            var content: [[String: Any]] = [["type": "text", "text": prompt]]
            for image in images {
                content.append(["type": "image_url", "image_url": ["url": "data:image/jpeg;base64," + image.base64EncodedString()]])
            }
            let object: [String: Any] = [
                "model": model,
                "messages": [["role": "user", "content": content]],
                "max_tokens": maxTokens,
                "temperature": temperature,
                "stream": false,
            ]
            return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        }
    }

    public struct Answer: Sendable, Equatable {
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
