import Foundation
import SightlineCore
import SightlineGraph
import SightlineInference
import SightlineModels

/// `semantic`: an embedding of each sampled frame in MiniLM's 384-d text space, so text queries
/// can search video. There is no image–text model offline, so it is built from what exists
/// (`method`): ConSE (Norouzi et al., 2014), the probability-weighted mean of the MiniLM
/// embeddings of the frame's top ImageNet labels (from an upstream `labels` node); the learned
/// ridge map of the frame's 1280-d visual feature (the labels node's `embeddings: true`,
/// `VisualTextAlignment`); or their blend (the default: best on `bench retrieval`). The MiniLM
/// embedding of the frame's on-screen text (from an upstream `ocr` node) is added when there is
/// any. Published as an `embeddings` record in the method's space, unit length.
public final class SemanticEmbeddingNode: NodeProcessor {
    private let embedder: MiniLMEmbedder
    private let textWeight: Float
    private let waitForText: Bool
    private let method: SemanticVectors.Method
    private let alignment: VisualTextAlignment?
    private var labelCache: [String: [Float]] = [:]
    /// Per source, the frame being assembled: its labels, then (aligned, blend) its visual
    /// feature, then (with text) its ocr record.
    private var pending: [String: Pending] = [:]

    struct Pending {
        var record: Record
        var labels: Labels
        var visual: [Float]?
        var text: String?
    }

    public static let descriptor = NodeDescriptor(
        name: "semantic",
        description: "Frame embedding in MiniLM text space: ConSE over the labels node's top labels, plus the ocr node's text (kind `embeddings`).",
        role: .transform, inputs: .records, outputs: .records,
        options: ModelNodeOptions.common + [
            OptionSpec("text_weight", .double, default: .double(0.5), min: 0, max: 10, help: "weight of the on-screen text embedding against the labels"),
            OptionSpec("with_text", .bool, default: .bool(true), help: "wait for each frame's ocr record (set false when the pipeline has no ocr node)"),
            OptionSpec("method", .choice(SemanticVectors.Method.allCases.map(\.rawValue)), default: .string(SemanticVectors.defaultMethod.rawValue),
                       help: "conse (top labels), aligned (learned map of the 1280-d feature) or blend; each writes its own space (minilm-384-…)"),
        ],
        contract: NodeContract(needs: [
            .init(anyOf: [.labels], hint: "add a labels node before it: the vector is built from the frame's labels"),
            .init(anyOf: [.ocr], when: .init("with_text", is: .bool(true)),
                  hint: "add an ocr node before it, or set with_text: false (otherwise it waits for text that never comes)"),
            .init(anyOf: [.embeddings], when: .init("method", is: .string(SemanticVectors.Method.aligned.rawValue)),
                  hint: "set embeddings: true on the labels node (the aligned vector maps its 1280-d feature), or method: conse"),
            .init(anyOf: [.embeddings], when: .init("method", is: .string(SemanticVectors.Method.blend.rawValue)),
                  hint: "set embeddings: true on the labels node (the blend maps its 1280-d feature), or method: conse"),
        ], produces: [.init(.embeddings)]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(try SemanticEmbeddingNode(options: options))
    }

    init(options: NodeOptions) throws {
        embedder = try MiniLMEmbedder(store: try ModelNodeOptions.store(ModelZoo.miniLM, options: options))
        textWeight = Float(options.double("text_weight") ?? 0.5)
        waitForText = options.bool("with_text") ?? true
        let name = options.string("method") ?? SemanticVectors.defaultMethod.rawValue
        guard let method = SemanticVectors.Method(rawValue: name) else {
            throw OptionError.notAChoice(got: name, choices: SemanticVectors.Method.allCases.map(\.rawValue))
        }
        self.method = method
        alignment = method == .conse ? nil : try VisualTextAlignment.load(store: try ModelNodeOptions.store(ModelZoo.efficientNetLite0, options: options), embedder: embedder)
    }

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        guard case .record(let record) = item else {
            if case .frame = item { emit(item) }
            return
        }
        emit(item)
        let source = record.sourceID
        switch record.value {
        case .labels(let labels):
            pending[source] = Pending(record: record, labels: labels)
        case .embedding(let visual) where visual.space == LabelsNode.embeddingSpace:
            guard method != .conse, var frame = pending[source], case .frame(let index) = visual.scope, index == frame.labels.frameIndex else { return }
            frame.visual = visual.vector
            pending[source] = frame
        case .ocr(let text):
            guard var frame = pending[source], text.frameIndex == frame.labels.frameIndex else { return }
            frame.text = text.text
            pending[source] = frame
        default:
            return
        }
        // The frame is complete when everything its method and settings wait for is here.
        guard let frame = pending[source], method == .conse || frame.visual != nil, !waitForText || frame.text != nil else { return }
        pending[source] = nil
        emit(.record(try embedding(frame.labels, of: frame.record, visual: frame.visual, text: frame.text)))
    }

    /// The space of the vectors this node publishes by default.
    public static let space = SemanticVectors.defaultMethod.space

    /// Unit-length vector for a frame (by the node's method), mixed with the text's embedding.
    func embedding(_ labels: Labels, of record: Record, visual: [Float]?, text: String?) throws -> Record {
        let missing = labels.top.map(\.name).filter { labelCache[$0] == nil }
        if !missing.isEmpty {
            for (name, v) in zip(missing, try embedder.embed(missing)) { labelCache[name] = v }
        }
        let (conse, used) = SemanticVectors.conse(labels.top.map { (name: $0.name, probability: Float($0.probability)) }, embedding: { self.labelCache[$0] })
        var vector: [Float]
        switch (method, alignment, visual) {
        case (.aligned, let alignment?, let visual?) where visual.count == VisualTextAlignment.inputDimension:
            vector = alignment.project(visual)
        case (.blend, let alignment?, let visual?) where visual.count == VisualTextAlignment.inputDimension:
            vector = SemanticVectors.blend(conse, alignment.project(visual))
        case (.conse, _, _):
            vector = conse
        default:
            throw ModelError.shapeMismatch("semantic: the frame's visual feature is missing or not \(VisualTextAlignment.inputDimension)-d")
        }
        let trimmed = text?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if !trimmed.isEmpty, let t = try embedder.embed([trimmed]).first {
            for d in vector.indices { vector[d] += textWeight * t[d] }
        }
        let norm = max(vector.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
        var provenance = record.provenance
        provenance.append(Provenance(name: ModelZoo.miniLM.name, version: "\(ModelZoo.miniLM.package)==\(ModelZoo.miniLM.version)", sha256: ModelZoo.miniLM.sha256))
        if method != .conse {
            provenance.append(Provenance(name: "visual-text-alignment", version: "ridge \(VisualTextAlignment.defaultRidge)", sha256: alignment?.digest ?? ""))
        }
        let embedding = Embedding(space: method.space, scope: .frame(index: labels.frameIndex), vector: vector.map { $0 / norm },
                                  evidence: .init(labels: used, text: trimmed))
        return Record(.embedding(embedding), sourceID: record.sourceID, start: record.start, end: record.end,
                      ingestWallClock: record.ingestWallClock, provenance: provenance)
    }
}
