import Crypto
import Foundation

/// Answers kept on disk by what was asked (endpoint, model, prompt, the pictures' hashes), so
/// a rerun over the same video costs the server nothing. One small JSON file per key, written
/// by rename so a crash never leaves half a file.
public struct ResponseCache: Sendable {
    public let folder: String

    public init(folder: String) {
        self.folder = folder
    }

    public static func key(endpoint: String, model: String, prompt: String, imageHashes: [String]) -> String {
        let text = ([endpoint, model, prompt] + imageHashes).joined(separator: "\u{1f}")
        return SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    public static func hash(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    private func path(_ key: String) -> String { folder + "/" + key + ".json" }

    public func get(_ key: String) -> ChatCompletions.Answer? {
        guard let data = FileManager.default.contents(atPath: path(key)), data.count < 1 << 20,
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let text = object["text"] as? String else { return nil }
        return ChatCompletions.Answer(text: text, model: object["model"] as? String)
    }

    public func put(_ key: String, _ answer: ChatCompletions.Answer) {
        var object: [String: Any] = ["text": answer.text, "created": Date().timeIntervalSince1970]
        if let model = answer.model { object["model"] = model }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let temporary = path(key) + ".\(getpid()).tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data) else { return }
        if rename(temporary, path(key)) != 0 { try? FileManager.default.removeItem(atPath: temporary) }
    }
}
