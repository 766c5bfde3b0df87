import Crypto
import Foundation

/// Answers kept on disk by what was asked (endpoint, model, prompt, the hashes of the pictures
/// or audio sent), so a rerun over the same video costs the server nothing. One small JSON
/// file per key, written by rename so a crash never leaves half a file.
public struct ResponseCache: Sendable {
    public let folder: String

    public init(folder: String) {
        self.folder = folder
    }

    /// The key of a request: where it went, the model, the prompt (or a request's other
    /// settings) and the hashes of what it carried (pictures, audio), in order.
    public static func key(endpoint: String, model: String, prompt: String, contentHashes: [String]) -> String {
        let text = ([endpoint, model, prompt] + contentHashes).joined(separator: "\u{1f}")
        return hash(Data(text.utf8))
    }

    public static func hash(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    private func path(_ key: String) -> String { folder + "/" + key + ".json" }

    /// The answer kept under `key`, if there is a readable one (a damaged file is a miss).
    public func get<Answer: Decodable>(_ key: String, as type: Answer.Type) -> Answer? {
        guard let data = FileManager.default.contents(atPath: path(key)), data.count < 16 << 20 else { return nil }
        return try? JSONDecoder().decode(Answer.self, from: data)
    }

    public func put<Answer: Encodable>(_ key: String, _ answer: Answer) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(answer) else { return }
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let temporary = path(key) + ".\(getpid()).tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data) else { return }
        if rename(temporary, path(key)) != 0 { try? FileManager.default.removeItem(atPath: temporary) }
    }
}
