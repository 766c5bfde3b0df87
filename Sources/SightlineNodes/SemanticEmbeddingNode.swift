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
    private var pending: [String: Record] = [:]  // source → labels record waiting for its ocr record

    public static let descriptor = NodeDescriptor(
        name: "semantic",
        description: "Frame embedding in MiniLM text space: ConSE over the labels node's top labels, plus the ocr node's text (kind `embeddings`).",
        role: .transform, inputs: .records, outputs: .records,
        options: ModelNodeOptions.common + [
            OptionSpec("text_weight", .double, default: .double(0.5), min: 0, max: 10, help: "weight of the on-screen text embedding against the labels"),
            OptionSpec("with_text", .bool, default: .bool(true), help: "wait for each frame's ocr record (set false when the pipeline has no ocr node)"),
        ])

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
        switch record.kind {
        case "labels":
            if waitForText {
                pending[record.sourceID] = record
            } else {
                emit(.record(try embedding(labels: record, text: nil)))
            }
        case "ocr":
            guard let labels = pending.removeValue(forKey: record.sourceID),
                  labels.fields["frame_index"] == record.fields["frame_index"] else { return }
            emit(.record(try embedding(labels: labels, text: record.fields["text"]?.stringValue)))
        default:
            break
        }
    }

    /// Unit-length ConSE vector for a labels record, mixed with the text's embedding.
    func embedding(labels record: Record, text: String?) throws -> Record {
        var vector = [Float](repeating: 0, count: MiniLMEmbedder.dimension)
        var used: [JSONValue] = []
        if case .array(let labels)? = record.fields["labels"] {
            let names = labels.compactMap { $0["label"]?.stringValue }
            let missing = names.filter { labelCache[$0] == nil }
            if !missing.isEmpty {
                for (name, v) in zip(missing, try embedder.embed(missing)) { labelCache[name] = v }
            }
            var total: Float = 0
            for label in labels {
                guard let name = label["label"]?.stringValue, let p = label["p"]?.doubleValue, let v = labelCache[name] else { continue }
                for d in vector.indices { vector[d] += Float(p) * v[d] }
                total += Float(p)
                used.append(.string(name))
            }
            if total > 0 { for d in vector.indices { vector[d] /= total } }
        }
        let trimmed = text?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if !trimmed.isEmpty, let t = try embedder.embed([trimmed]).first {
            for d in vector.indices { vector[d] += textWeight * t[d] }
        }
        let norm = max(vector.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
        var provenance = record.provenance
        provenance.append(Provenance(name: ModelZoo.miniLM.name, version: "\(ModelZoo.miniLM.package)==\(ModelZoo.miniLM.version)", sha256: ModelZoo.miniLM.sha256))
        return Record(kind: "embeddings", sourceID: record.sourceID, start: record.start, end: record.end,
                      fields: ["space": "minilm-384-conse", "dimension": 384, "scope": "frame", "labels": .array(used), "text": .string(trimmed),
                               "frame_index": record.fields["frame_index"] ?? .null],
                      vector: vector.map { $0 / norm }, ingestWallClock: record.ingestWallClock, provenance: provenance)
    }
}
