import Foundation
import Testing
import SightlineCore
import SightlineTestSupport
@testable import SightlineGraph
@testable import SightlineModels
@testable import SightlineNodes

/// ConSE frame embeddings with the real MiniLM: text queries find the right frame.
@Suite(.serialized) struct SemanticEmbeddingTests {
    static func labels(_ index: Int, _ pairs: [(String, Double)]) -> Record {
        TestRecords.labels(at: Double(index), frame: index, pairs)
    }

    static func ocr(_ index: Int, _ text: String) -> Record {
        TestRecords.ocr(at: Double(index), frame: index, text)
    }

    @Test func textQueriesRankTheRightFrameFirst() throws {
        try ModelStore().fetch(ModelZoo.miniLM)
        let node = try SemanticEmbeddingNode(options: NodeOptions(["fetch": .bool(false), "text_weight": .double(0.5), "with_text": .bool(true), "method": .string("conse")]))
        let context = try TestContext()
        var vectors: [Int: [Float]] = [:]
        let frames: [(Record, Record)] = [
            (Self.labels(0, [("Egyptian cat", 0.8), ("tabby", 0.1), ("tiger cat", 0.05)]), Self.ocr(0, "")),
            (Self.labels(1, [("espresso", 0.7), ("cup", 0.2), ("coffee mug", 0.05)]), Self.ocr(1, "Morning menu")),
            (Self.labels(2, [("moped", 0.5), ("motor scooter", 0.3), ("crash helmet", 0.1)]), Self.ocr(2, "")),
            (Self.labels(3, [("scoreboard", 0.6), ("stage", 0.1)]), Self.ocr(3, "Final score 3 to 1")),
        ]
        for (labels, ocr) in frames {
            for record in [labels, ocr] {
                try node.process(.record(record), context: context) { item in
                    if case .record(let r) = item, r.kind == .embeddings, let v = r.vector, let i = r.data["frame_index"]?.intValue {
                        vectors[Int(i)] = v
                        #expect(r.data["space"] == "minilm-384-conse")
                        #expect(abs(v.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4)
                    }
                }
            }
        }
        #expect(vectors.count == 4)
        let embedder = try MiniLMEmbedder(store: ModelStore())
        let queries = [("a cat", 0), ("a cup of coffee", 1), ("a man riding a scooter", 2), ("the football match result", 3)]
        let queryVectors = try embedder.embed(queries.map(\.0))
        var right = 0
        for ((query, expected), q) in zip(queries, queryVectors) {
            let best = vectors.max { a, b in zip(a.value, q).reduce(0) { $0 + $1.0 * $1.1 } < zip(b.value, q).reduce(0) { $0 + $1.0 * $1.1 } }?.key
            if best == expected { right += 1 } else { print("query '\(query)' ranked frame \(String(describing: best)) first") }
        }
        #expect(right >= 3, "\(right)/4 queries found their frame first")
    }

    /// The learned alignment and the blend, from real photos through the real classifier:
    /// each query finds its photo, and the vectors go to the method's own space.
    @Test(arguments: [SemanticVectors.Method.aligned, .blend])
    func photosAreFoundByTheirMeaning(method: SemanticVectors.Method) throws {
        let store = ModelStore()
        try store.fetch(ModelZoo.miniLM)
        try store.fetch(ModelZoo.efficientNetLite0)
        let classifier = try EfficientNetLite0(store: store)
        let node = try SemanticEmbeddingNode(options: NodeOptions(["fetch": .bool(false), "with_text": .bool(false), "method": .string(method.rawValue)]))
        let context = try TestContext()
        let photos = ["chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png"]
        var vectors: [Int: [Float]] = [:]
        for (i, name) in photos.enumerated() {
            let frame = try DeltaInferenceTests.decode(try #require(try SamplePhotos.all()[name]))
            guard let result = try classifier.classify([frame]).first else { continue }
            let labels = Self.labels(i, result.top(5).map { ($0.label, Double($0.probability)) })
            let visual = Record(.embedding(Embedding(space: LabelsNode.embeddingSpace, scope: .frame(index: i), vector: result.features)),
                                sourceID: labels.sourceID, start: labels.start, end: labels.end, ingestWallClock: labels.ingestWallClock)
            for record in [labels, visual] {
                try node.process(.record(record), context: context) { item in
                    if case .record(let r) = item, r.kind == .embeddings, r.data["space"] != .string(LabelsNode.embeddingSpace), let v = r.vector {
                        #expect(r.data["space"] == .string(method.space))
                        #expect(r.provenance.contains { $0.name == "visual-text-alignment" })
                        vectors[i] = v
                    }
                }
            }
        }
        #expect(vectors.count == photos.count)
        let queries = ["a kitten", "a cup of coffee", "a space launch", "a motorbike"]
        let embedder = try MiniLMEmbedder(store: store)
        var right = 0
        for (expected, q) in try embedder.embed(queries).enumerated() {
            let best = vectors.max { a, b in zip(a.value, q).reduce(0) { $0 + $1.0 * $1.1 } < zip(b.value, q).reduce(0) { $0 + $1.0 * $1.1 } }?.key
            if best == expected { right += 1 } else { print("\(method): '\(queries[expected])' ranked photo \(String(describing: best)) first") }
        }
        #expect(right >= 3, "\(right)/4 queries found their photo first")
    }
}
