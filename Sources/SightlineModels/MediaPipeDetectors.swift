import Foundation
import SightlineCore
import SightlineInference

/// The MediaPipe detectors (TFLite files from the `mediapipe` wheel) with the settings of
/// MediaPipe's own graphs: face_detection_short_range.pbtxt, face_detection_full_range.pbtxt and
/// pose_detection_cpu.pbtxt (input size, anchors, box decoding, score threshold, weighted NMS).
public enum MediaPipeDetectors {
    /// The files in the wheel, by the names the CLI and the nodes use.
    public enum Graph: String, Sendable, CaseIterable {
        /// BlazeFace for faces within about 2 m (selfies, talking heads), 128² input.
        case faceShort = "face-short"
        /// BlazeFace for faces within about 5 m (sparse weights), 192² input.
        case faceFull = "face-full"
        /// BlazePose's person detector: a face box plus hip and shoulder keypoints, 224² input.
        case person

        /// The sha256 of its file.
        public var sha256: String {
            companion.map { ModelZoo.mediapipe.companions[$0].sha256 } ?? ModelZoo.mediapipe.sha256
        }

        var companion: Int? {
            switch self {
            case .faceShort: nil
            case .faceFull: 0
            case .person: 1
            }
        }

        public var configuration: BlazeDetector.Configuration {
            switch self {
            case .faceShort:
                var decoding = DetectionDecoding(coordinates: 16, keypoints: 6, scale: 128, minScore: 0.5)
                decoding.suppressionThreshold = 0.3
                return .init(inputSize: 128,
                             anchors: SSDAnchorOptions(inputWidth: 128, inputHeight: 128, minScale: 0.1484375, maxScale: 0.75, strides: [8, 16, 16, 16]),
                             decoding: decoding, boxesOutput: "regressors", scoresOutput: "classificators")
            case .faceFull:
                return .init(inputSize: 192,
                             anchors: SSDAnchorOptions(inputWidth: 192, inputHeight: 192, minScale: 0.1484375, maxScale: 0.75, strides: [4],
                                                       interpolatedScaleAspectRatio: 0),
                             decoding: DetectionDecoding(coordinates: 16, keypoints: 6, scale: 192, minScore: 0.6),
                             boxesOutput: "Identity", scoresOutput: "Identity_1")
            case .person:
                return .init(inputSize: 224,
                             anchors: SSDAnchorOptions(inputWidth: 224, inputHeight: 224, minScale: 0.1484375, maxScale: 0.75, strides: [8, 16, 32, 32, 32]),
                             decoding: DetectionDecoding(coordinates: 12, keypoints: 4, scale: 224, minScore: 0.2),
                             boxesOutput: "Identity", scoresOutput: "Identity_1")
            }
        }

        /// What each keypoint is, in the model's order.
        public var keypointNames: [String] {
            switch self {
            case .faceShort, .faceFull: ["right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion"]
            case .person: ["hip_center", "body_extent", "shoulder_center", "upper_body_extent"]
            }
        }
    }

    /// The verified file of `graph`, fetched on first use when `fetch` is set.
    public static func path(_ graph: Graph, store: ModelStore) throws -> String {
        let manifest = ModelZoo.mediapipe
        guard let index = graph.companion else { return try store.verify(manifest) }
        return try store.verify(manifest, companion: manifest.companions[index])
    }

    public static func detector(_ graph: Graph, store: ModelStore, threads: Int = 1) throws -> BlazeDetector {
        let file = try path(graph, store: store)
        let model = try InferenceModel(graph: try TFLiteLoader.load(path: file), threads: threads, reload: { try TFLiteLoader.load(path: file) })
        return try BlazeDetector(model: model, configuration: graph.configuration)
    }

    /// A person's body from BlazePose's detection: the square around the hip centre that reaches
    /// the body-extent keypoint (MediaPipe's full-body region before its 1.25 enlargement), in
    /// normalized frame coordinates (the square is square in pixels, so `aspect` = width / height
    /// of the frame). The detection's own box is the person's face.
    public static func body(of detection: NormalizedDetection, aspect: Float) -> (xmin: Float, ymin: Float, width: Float, height: Float)? {
        guard detection.keypoints.count >= 2 else { return nil }
        let hip = detection.keypoints[0], extent = detection.keypoints[1]
        // Distance in pixel-proportional units (x scaled by the aspect ratio).
        let dx = (extent.x - hip.x) * aspect, dy = extent.y - hip.y
        let radius = (dx * dx + dy * dy).squareRoot()
        guard radius > 0 else { return nil }
        return (hip.x - radius / aspect, hip.y - radius, 2 * radius / aspect, 2 * radius)
    }

    /// Detections in frame pixels, clipped to the frame. Faces: the detector's box. People: the
    /// body square around the hip centre as the box (its visible part) and the detector's own
    /// box as `face`; a person whose body lies wholly outside the frame is dropped.
    public static func objects(_ found: [NormalizedDetection], graph: Graph, width: Int, height: Int) -> [DetectedObject] {
        let (w, h) = (Double(width), Double(height))
        func pixels(_ x: Float, _ y: Float, _ bw: Float, _ bh: Float) -> PixelBox {
            PixelBox(x: Double(x) * w, y: Double(y) * h, width: Double(bw) * w, height: Double(bh) * h).clipped(width: width, height: height)
        }
        return found.compactMap { d in
            let keypoints = zip(graph.keypointNames, d.keypoints).map { Keypoint(name: $0, x: Double($1.x) * w, y: Double($1.y) * h) }
            let face = pixels(d.xmin, d.ymin, d.width, d.height)
            guard graph == .person else { return DetectedObject(box: face, score: Double(d.score), keypoints: keypoints) }
            guard let body = body(of: d, aspect: Float(w / h)) else { return nil }
            let box = pixels(body.xmin, body.ymin, body.width, body.height)
            guard box.area > 0 else { return nil }
            return DetectedObject(box: box, score: Double(d.score), keypoints: keypoints, face: face)
        }
    }
}
