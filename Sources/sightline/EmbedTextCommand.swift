import ArgumentParser
import Foundation
import SightlineKernels
import SightlineModels

struct EmbedTextCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed-text", abstract: "Embed texts with all-MiniLM-L6-v2 (384-d, unit length) and print a summary of each vector.")

    @Argument(help: "Texts to embed.") var texts: [String]
    @Flag(help: "Print the full vectors as JSON lines.") var json = false
    @Flag(help: "Print the tokens each text becomes.") var tokens = false
    @OptionGroup var cache: ModelCacheOption

    func run() throws {
        KernelThreads.setBLASThreads(1)
        guard !texts.isEmpty else { throw ValidationError("give at least one text") }
        let embedder = try MiniLMEmbedder(store: cache.store)
        let vectors = try embedder.embed(texts)
        for (text, vector) in zip(texts, vectors) {
            if json {
                print("{\"text\":" + String(decoding: try JSONEncoder().encode(text), as: UTF8.self)
                      + ",\"embedding\":[" + vector.map { String(format: "%.7g", $0) }.joined(separator: ",") + "]}")
                continue
            }
            let head = vector.prefix(6).map { String(format: "%+.4f", $0) }.joined(separator: " ")
            let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
            print("\(vector.count)-d  |v| \(String(format: "%.4f", norm))  [\(head) …]  \(text)")
            if tokens {
                let ids = embedder.tokenizer.encode(text)
                let reverse = Dictionary(embedder.tokenizer.vocabulary.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
                print("    tokens: " + ids.map { reverse[$0] ?? "?" }.joined(separator: " "))
            }
        }
        if vectors.count > 1 && !json {
            print("cosine similarity:")
            for i in 0..<vectors.count {
                let row = (0..<vectors.count).map { j in String(format: "%6.3f", zip(vectors[i], vectors[j]).reduce(0) { $0 + $1.0 * $1.1 }) }
                print("  " + row.joined(separator: " "))
            }
        }
    }
}
