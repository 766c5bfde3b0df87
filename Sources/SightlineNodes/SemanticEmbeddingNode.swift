import Foundation
import SightlineCore
import SightlineGraph
import SightlineModels

/// `semantic`: an embedding of each sampled frame in MiniLM's 384-d text space, so text queries
/// can search video. There is no image–text model offline, so it is built honestly from what
/// exists — ConSE (Norouzi et al., 2014): the probability-weighted mean of the MiniLM
/// embeddings of the frame's top ImageNet labels (from an upstream `labels` node) — plus the
/// MiniLM embedding of the frame's on-screen text (from an upstream `ocr` node) when there is
/// any. Published as an `embeddings` record (space `minilm-384-conse`), unit length.
public final class SemanticEmbeddingNode: NodeProcessor {
    private let embedder: MiniLMEmbedder
    private let textWeight: Float
    private let waitForText: Bool
    private var labelCache: [String: [Float]] = [:]
    private var pending: [String: (record: Record, labels: Labels)] = [:]  // source → labels waiting for their frame's ocr record

    public static let descriptor = NodeDescriptor(
        name: "semantic",
        description: "Frame embedding in MiniLM text space: ConSE over the labels node's top labels, plus the ocr node's text (kind `embeddings`).",
        role: .transform, inputs: .records, outputs: .records,
        options: ModelNodeOptions.common + [
            OptionSpec("text_weight", .double, default: .double(0.5), min: 0, max: 10, help: "weight of the on-screen text embedding against the labels"),
            OptionSpec("with_text", .bool, default: .bool(true), help: "wait for each frame's ocr record (set false when the pipeline has no ocr node)"),
        ],
        contract: NodeContract(needs: [
            .init(anyOf: [.labels], hint: "add a labels node before it: the vector is built from the frame's labels"),
            .init(anyOf: [.ocr], when: .init("with_text", is: .bool(true)),
                  hint: "add an ocr node before it, or set with_text: false (otherwise it waits for text that never comes)"),
        ], produces: [.init(.embeddings)]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(try SemanticEmbeddingNode(options: options))
    }

    init(options: NodeOptions) throws {
        embedder = try MiniLMEmbedder(store: try ModelNodeOptions.store(ModelZoo.miniLM, options: options))
        textWeight = Float(options.double("text_weight") ?? 0.5)
        waitForText = options.bool("with_text") ?? true
    }

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        guard case .record(let record) = item else {
            if case .frame = item { emit(item) }
            return
        }
        emit(item)
        switch record.value {
        case .labels(let labels):
            if waitForText {
                pending[record.sourceID] = (record, labels)
            } else {
                emit(.record(try embedding(labels, of: record, text: nil)))
            }
        case .ocr(let text):
            guard let (labelsRecord, labels) = pending.removeValue(forKey: record.sourceID), labels.frameIndex == text.frameIndex else { return }
            emit(.record(try embedding(labels, of: labelsRecord, text: text.text)))
        default:
            break
        }
    }

    /// The space of the vectors this node publishes.
    public static let space = "minilm-384-conse"

    /// Unit-length ConSE vector for a frame's labels, mixed with the text's embedding.
    func embedding(_ labels: Labels, of record: Record, text: String?) throws -> Record {
        var vector = [Float](repeating: 0, count: MiniLMEmbedder.dimension)
        var used: [String] = []
        let missing = labels.top.map(\.name).filter { labelCache[$0] == nil }
        if !missing.isEmpty {
            for (name, v) in zip(missing, try embedder.embed(missing)) { labelCache[name] = v }
        }
        var total: Float = 0
        for label in labels.top {
            guard let v = labelCache[label.name] else { continue }
            let p = Float(label.probability)
            for d in vector.indices { vector[d] += p * v[d] }
            total += p
            used.append(label.name)
        }
        if total > 0 { for d in vector.indices { vector[d] /= total } }
        let trimmed = text?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if !trimmed.isEmpty, let t = try embedder.embed([trimmed]).first {
            for d in vector.indices { vector[d] += textWeight * t[d] }
        }
        let norm = max(vector.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
        var provenance = record.provenance
        provenance.append(Provenance(name: ModelZoo.miniLM.name, version: "\(ModelZoo.miniLM.package)==\(ModelZoo.miniLM.version)", sha256: ModelZoo.miniLM.sha256))
        let embedding = Embedding(space: Self.space, scope: .frame(index: labels.frameIndex), vector: vector.map { $0 / norm },
                                  evidence: .init(labels: used, text: trimmed))
        return Record(.embedding(embedding), sourceID: record.sourceID, start: record.start, end: record.end,
                      ingestWallClock: record.ingestWallClock, provenance: provenance)
    }
}
