import Foundation
import Testing
@testable import SightlineModels

/// all-MiniLM-L6-v2 against Scripts/reference/minilm_reference.py (HF tokenizers for token ids,
/// an independent float64 numpy BERT for embeddings).
@Suite(.serialized) struct MiniLMTests {
    struct Reference: Decodable {
        var text: String
        var ids: [Int32]
        var embedding: [Double]
    }

    static func load() throws -> ([Reference], MiniLMEmbedder) {
        let url = try #require(Bundle.module.url(forResource: "minilm-reference", withExtension: "json", subdirectory: "Fixtures"))
        let reference = try JSONDecoder().decode([Reference].self, from: Data(contentsOf: url))
        let store = ModelStore()
        try store.fetch(ModelZoo.miniLM)
        return (reference, try MiniLMEmbedder(store: store))
    }

    @Test func tokenizerMatchesHuggingFace() throws {
        let (reference, embedder) = try Self.load()
        #expect(reference.count >= 10)
        for r in reference {
            #expect(embedder.tokenizer.encode(r.text) == r.ids, "\(r.text.prefix(40))")
        }
    }

    @Test func tokenizerEdgeCases() throws {
        let (_, embedder) = try Self.load()
        let t = embedder.tokenizer
        #expect(t.basicTokens("Héllo, WÖRLD!") == ["hello", ",", "world", "!"])
        #expect(t.basicTokens("日本語") == ["日", "本", "語"])
        // NUL and the zero-width space (a format character) are dropped; a tab separates words.
        #expect(t.basicTokens("a\u{0}b\u{200B}c\tx") == ["abc", "x"])
        #expect(t.encode("") == [t.clsID, t.sepID])
        #expect(t.encode(String(repeating: "x", count: 150)) == [t.clsID, t.unknownID, t.sepID])
        #expect(t.encode(String(repeating: "hello ", count: 1000)).count == 256)
    }

    @Test func embeddingsMatchTheReference() throws {
        let (reference, embedder) = try Self.load()
        // All texts in one padded batch: padding must not change any text's embedding.
        let vectors = try embedder.embed(reference.map(\.text))
        for (r, v) in zip(reference, vectors) {
            let cosine = zip(r.embedding, v).reduce(0.0) { $0 + $1.0 * Double($1.1) }
            #expect(cosine >= 0.9999, "\(r.text.prefix(40)): cosine \(cosine)")
            let norm = v.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
            #expect(abs(norm - 1) < 1e-4)
        }
        let single = try embedder.embed([reference[0].text])[0]
        #expect(zip(single, vectors[0]).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    @Test func similarMeaningsAreCloser() throws {
        let (_, embedder) = try Self.load()
        let v = try embedder.embed(["a photo of a cat", "a kitten sleeping", "quarterly earnings report"])
        let cos = { (a: [Float], b: [Float]) in zip(a, b).reduce(Float(0)) { $0 + $1.0 * $1.1 } }
        #expect(cos(v[0], v[1]) > cos(v[0], v[2]) + 0.2)
    }
}
