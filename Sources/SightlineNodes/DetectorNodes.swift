import Foundation
import SightlineCore
import SightlineGraph
import SightlineModels

/// `faces`: faces in each frame with BlazeFace (MediaPipe's detector and settings): box, six
/// keypoints (eyes, nose tip, mouth centre, ear tragions) and score.
public final class FacesNode: BatchedModelNode {
    private let detector: BlazeDetector
    private let graph: MediaPipeDetectors.Graph
    private let crops: MotionCropDetection?

    public static let descriptor = NodeDescriptor(
        name: "faces", description: "Faces per frame (BlazeFace): boxes, keypoints and score in pixels (kind `faces`).",
        role: .transform, inputs: .frames, outputs: .any,
        options: ModelNodeOptions.common + [
            OptionSpec("range", .choice(["full", "short"]), default: .string("full"),
                       help: "full: faces up to about 5 m away (192² input); short: within about 2 m, selfies and talking heads (128², faster)"),
            OptionSpec("min_score", .double, default: .double(0), min: 0, max: 1,
                       help: "keep faces scoring at least this (0: the model's own threshold, 0.6 full range, 0.5 short)"),
        ] + MotionCropDetection.options,
        contract: NodeContract(needs: GatedReuse.needs + MotionCropDetection.needs, produces: [.init(.faces)]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(try FacesNode(options: options))
    }

    init(options: NodeOptions) throws {
        graph = options.string("range") == "short" ? .faceShort : .faceFull
        let store = try ModelNodeOptions.store(ModelZoo.mediapipe, options: options)
        var detector = try MediaPipeDetectors.detector(graph, store: store, threads: options.int("threads") ?? 1)
        if let minimum = options.double("min_score"), minimum > 0 {
            var configuration = detector.configuration
            configuration.decoding.minScore = Float(minimum)
            detector = try BlazeDetector(model: detector.model, configuration: configuration)
        }
        self.detector = detector
        crops = MotionCropDetection(options: options)
        super.init(batching: options, name: "faces")
    }

    public override func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        try MotionCropDetection.process(item, crops: crops) { try super.process(item, context: context, emit: emit) }
    }

    override func infer(_ frames: [Frame]) throws -> [[Record]] {
        try frames.map { frame in
            let objects = try crops?.detect(frame, detector: detector, graph: graph)
                ?? MediaPipeDetectors.objects(try detector.detect(frame), graph: graph, width: frame.width, height: frame.height)
            return [Record(.faces(Detections(frameIndex: frame.decodeIndex, width: frame.width, height: frame.height, objects: objects)),
                           frame: frame, provenance: [ModelNodeOptions.provenance(ModelZoo.mediapipe, file: graph.rawValue)])]
        }
    }
}

/// `people`: people in each frame with BlazePose's person detector: the body's box (the square
/// around the hip centre reaching the body-extent keypoint), the face box, hip and shoulder
/// keypoints, score.
public final class PeopleNode: BatchedModelNode {
    private let detector: BlazeDetector
    private let crops: MotionCropDetection?

    public static let descriptor = NodeDescriptor(
        name: "people", description: "People per frame (BlazePose person detector): body and face boxes, keypoints, score (kind `people`).",
        role: .transform, inputs: .frames, outputs: .any,
        options: ModelNodeOptions.common + [
            OptionSpec("min_score", .double, default: .double(0.5), min: 0, max: 1,
                       help: "keep people scoring at least this (the model's own graph keeps 0.2 and up, for its landmark stage)"),
        ] + MotionCropDetection.options,
        contract: NodeContract(needs: GatedReuse.needs + MotionCropDetection.needs, produces: [.init(.people)]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(try PeopleNode(options: options))
    }

    init(options: NodeOptions) throws {
        let store = try ModelNodeOptions.store(ModelZoo.mediapipe, options: options)
        let base = try MediaPipeDetectors.detector(.person, store: store, threads: options.int("threads") ?? 1)
        var configuration = base.configuration
        configuration.decoding.minScore = Float(options.double("min_score") ?? 0.5)
        detector = try BlazeDetector(model: base.model, configuration: configuration)
        crops = MotionCropDetection(options: options)
        super.init(batching: options, name: "people")
    }

    public override func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        try MotionCropDetection.process(item, crops: crops) { try super.process(item, context: context, emit: emit) }
    }

    override func infer(_ frames: [Frame]) throws -> [[Record]] {
        try frames.map { frame in
            let objects = try crops?.detect(frame, detector: detector, graph: .person, describe: Self.withColours)
                ?? Self.withColours(MediaPipeDetectors.objects(try detector.detect(frame), graph: .person, width: frame.width, height: frame.height), frame)
            return [Record(.people(Detections(frameIndex: frame.decodeIndex, width: frame.width, height: frame.height, objects: objects)),
                           frame: frame, provenance: [ModelNodeOptions.provenance(ModelZoo.mediapipe, file: MediaPipeDetectors.Graph.person.rawValue)])]
        }
    }

    /// People with the colours of their upper and lower clothing, where they can be named.
    static func withColours(_ people: [DetectedObject], _ frame: Frame) -> [DetectedObject] {
        people.map { person in
            var person = person
            let (upper, lower) = ColourNames.person(in: frame, object: person)
            if let upper { person.attributes["upper_colour"] = upper }
            if let lower { person.attributes["lower_colour"] = lower }
            return person
        }
    }
}

/// `motion_crops: true` on a detector node: where the regions node upstream saw a change, the
/// detector looks in square crops around it (`MotionCropPlanner`), seeing small, distant
/// things larger than the whole frame shows them; what it found before away from every change
/// stays (`DetectionCarryOver`). Frames the regions node refreshes (the first, a shot change,
/// every `refresh_every`, most tiles changed) run the whole frame plus crops around what was
/// known. Per source.
public final class MotionCropDetection {
    static let options: [OptionSpec] = [
        OptionSpec("motion_crops", .bool, default: .bool(false),
                   help: "with a regions node upstream (a fixed camera): detect in square crops around what moved, where small, distant people and faces are seen larger than in the whole frame; detections away from every change are kept; when more than a quarter of the tiles change (the picture itself moves) the whole frame only, as without it"),
        OptionSpec("max_crops", .int, default: .int(6), min: 1, max: 64,
                   help: "motion_crops: at most this many crops per frame (one detector run each); a frame needing more keeps the largest and runs the whole frame too"),
    ]

    static let needs = [NodeContract.Need(anyOf: [.regions], when: .init("motion_crops", is: .bool(true)),
                                          hint: "add a regions node before it (e.g. `- cam -> regions`, `- regions -> NODE`), or set motion_crops: false")]

    private let planner: MotionCropPlanner
    /// Per source, in frame order: the tiles the regions node saw change on each frame not yet
    /// detected (nil: it refreshed the frame).
    private var changes: [String: [(frame: Int, tiles: TileMask?)]] = [:]
    private var carry: [String: DetectionCarryOver] = [:]

    init?(options: NodeOptions) {
        guard options.bool("motion_crops") ?? false else { return nil }
        planner = MotionCropPlanner(maxCrops: options.int("max_crops") ?? 6)
    }

    /// Runs a detector node's `process` for `item` around what `crops` keeps: a frame's regions
    /// record before the frame; a source's end after the frames still batched are detected.
    static func process(_ item: Item, crops: MotionCropDetection?, next: () throws -> Void) throws {
        if case .endOfStream = item {
            try next()
            crops?.observe(item)
        } else {
            crops?.observe(item)
            try next()
        }
    }

    /// Keeps the regions node's decision for each frame, and forgets a source that ended.
    func observe(_ item: Item) {
        switch item {
        case .record(let record):
            // A frame marked skip comes with no tile set: nothing to look at, everything kept.
            guard case .regions(let regions) = record.value else { return }
            var pending = changes[record.sourceID] ?? []
            pending.append((regions.frameIndex, regions.refresh ? nil : regions.tiles))
            // Bounded as the node's other per-frame tables: records of frames that never come.
            changes[record.sourceID] = Array(pending.suffix(64))
        case .endOfStream(let eos):
            changes[eos.sourceID] = nil
            carry[eos.sourceID] = nil
        default: break
        }
    }

    /// The frame's detections in pixels. `describe` adds attributes to fresh detections (kept
    /// ones keep theirs).
    func detect(_ frame: Frame, detector: BlazeDetector, graph: MediaPipeDetectors.Graph,
                describe: ([DetectedObject], Frame) -> [DetectedObject] = { objects, _ in objects }) throws -> [DetectedObject] {
        // What changed since the last frame detected: every frame's tiles up to this one (a
        // gate's `interval` holds frames in between). No record, or a refresh among them:
        // nothing says where it changed, so look everywhere.
        let pending = changes[frame.sourceID] ?? []
        let since = pending.filter { $0.frame <= frame.decodeIndex }
        changes[frame.sourceID] = pending.filter { $0.frame > frame.decodeIndex }
        let changed = Self.union(since.map(\.tiles))
        var state = carry[frame.sourceID] ?? DetectionCarryOver()
        defer { carry[frame.sourceID] = state }
        return try Self.detect(frame, changed: changed, detector: detector, graph: graph, planner: planner, state: &state, describe: describe)
    }

    /// The tiles set in any of `masks`; nil when there are none, one is nil (a refresh) or
    /// their grids differ.
    static func union(_ masks: [TileMask?]) -> TileMask? {
        guard var all = masks.first ?? nil else { return nil }
        for mask in masks.dropFirst() {
            guard let mask, mask.columns == all.columns, mask.rows == all.rows, mask.tileSize == all.tileSize else { return nil }
            for i in all.bits.indices where mask.bits[i] { all.bits[i] = true }
        }
        return all
    }

    /// One frame of a source: the plan for `changed` (nil: unknown), the detector on the whole
    /// frame and each crop, then what `state` keeps. Also `sightline detect --motion-crops`.
    public static func detect(_ frame: Frame, changed: TileMask?, detector: BlazeDetector, graph: MediaPipeDetectors.Graph,
                              planner: MotionCropPlanner, state: inout DetectionCarryOver,
                              describe: ([DetectedObject], Frame) -> [DetectedObject] = { objects, _ in objects }) throws -> [DetectedObject] {
        let plan = planner.plan(width: frame.width, height: frame.height, changed: changed, known: state.local ? state.known.map(\.box) : [])
        var found: [NormalizedDetection] = plan.wholeFrame ? try detector.detect(frame) : []
        for crop in plan.crops {
            guard let pixels = frame.cropped(to: crop) else { continue }
            found += try detector.detect(pixels).map { $0.fromCrop(crop, frameWidth: frame.width, frameHeight: frame.height) }
        }
        let fresh = describe(MediaPipeDetectors.objects(found, graph: graph, width: frame.width, height: frame.height), frame)
        return state.next(found: fresh, changed: changed, local: plan.local)
    }
}
