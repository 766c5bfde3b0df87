import Foundation
import SightlineCore
import SightlineGraph
import SightlineModels

/// `faces`: faces in each frame with BlazeFace (MediaPipe's detector and settings): box, six
/// keypoints (eyes, nose tip, mouth centre, ear tragions) and score.
public final class FacesNode: BatchedModelNode {
    private let detector: BlazeDetector
    private let graph: MediaPipeDetectors.Graph

    public static let descriptor = NodeDescriptor(
        name: "faces", description: "Faces per frame (BlazeFace): boxes, keypoints and score in pixels (kind `faces`).",
        role: .transform, inputs: .frames, outputs: .any,
        options: ModelNodeOptions.common + [
            OptionSpec("range", .choice(["full", "short"]), default: .string("full"),
                       help: "full: faces up to about 5 m away (192² input); short: within about 2 m, selfies and talking heads (128², faster)"),
            OptionSpec("min_score", .double, default: .double(0), min: 0, max: 1,
                       help: "keep faces scoring at least this (0: the model's own threshold, 0.6 full range, 0.5 short)"),
        ],
        contract: NodeContract(needs: GatedReuse.needs, produces: [.init(.faces)]))

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
        super.init(batching: options, name: "faces")
    }

    override func infer(_ frames: [Frame]) throws -> [[Record]] {
        try frames.map { frame in
            let objects = MediaPipeDetectors.objects(try detector.detect(frame), graph: graph, width: frame.width, height: frame.height)
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

    public static let descriptor = NodeDescriptor(
        name: "people", description: "People per frame (BlazePose person detector): body and face boxes, keypoints, score (kind `people`).",
        role: .transform, inputs: .frames, outputs: .any,
        options: ModelNodeOptions.common + [
            OptionSpec("min_score", .double, default: .double(0.5), min: 0, max: 1,
                       help: "keep people scoring at least this (the model's own graph keeps 0.2 and up, for its landmark stage)"),
        ],
        contract: NodeContract(needs: GatedReuse.needs, produces: [.init(.people)]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(try PeopleNode(options: options))
    }

    init(options: NodeOptions) throws {
        let store = try ModelNodeOptions.store(ModelZoo.mediapipe, options: options)
        let base = try MediaPipeDetectors.detector(.person, store: store, threads: options.int("threads") ?? 1)
        var configuration = base.configuration
        configuration.decoding.minScore = Float(options.double("min_score") ?? 0.5)
        detector = try BlazeDetector(model: base.model, configuration: configuration)
        super.init(batching: options, name: "people")
    }

    override func infer(_ frames: [Frame]) throws -> [[Record]] {
        try frames.map { frame in
            var objects = MediaPipeDetectors.objects(try detector.detect(frame), graph: .person, width: frame.width, height: frame.height)
            for i in objects.indices {
                let (upper, lower) = ColourNames.person(in: frame, object: objects[i])
                if let upper { objects[i].attributes["upper_colour"] = upper }
                if let lower { objects[i].attributes["lower_colour"] = lower }
            }
            return [Record(.people(Detections(frameIndex: frame.decodeIndex, width: frame.width, height: frame.height, objects: objects)),
                           frame: frame, provenance: [ModelNodeOptions.provenance(ModelZoo.mediapipe, file: MediaPipeDetectors.Graph.person.rawValue)])]
        }
    }
}
