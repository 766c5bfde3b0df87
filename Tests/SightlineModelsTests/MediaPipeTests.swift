import Foundation
import Testing
import SightlineCore
import SightlineInference
import SightlineMedia
@testable import SightlineModels
import SightlineTestSupport

/// The MediaPipe detectors on our engine, against LiteRT on the same TFLite files and against
/// MediaPipe's own face detection (Scripts/reference/tflite_reference.py wrote
/// Fixtures/mediapipe-reference.json): raw outputs number by number, detections by IoU.
@Suite(.serialized) struct MediaPipeTests {
    struct Reference: Decodable {
        struct Detection: Decodable {
            var box: [Double]
            var score: Double
        }

        struct Graph: Decodable {
            var anchors: [Int]
            var scores: [Double]
            var boxes: [[Double]]
            var detections: [Detection]
        }

        struct Image: Decodable {
            var width: Int
            var height: Int
            var graphs: [String: Graph]
            var mediapipe: [String: [Detection]]?
        }

        var images: [String: Image]
    }

    static func reference() throws -> Reference {
        let url = try #require(Bundle.module.url(forResource: "mediapipe-reference", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
    }

    /// The image a fixture key names: a sample photo, or `VIDEO@SECONDS` of a sample video.
    static func frame(_ key: String) throws -> Frame {
        let (name, seconds) = key.contains("@") ? (String(key.split(separator: "@")[0]), Double(key.split(separator: "@")[1]) ?? 0) : (key, 0)
        let path = name.hasSuffix(".mp4") ? try SampleVideos.path(name) : try #require(try SamplePhotos.all()[name])
        let source = VideoSource(url: path, options: SourceOptions(output: OutputFormat(pixelFormat: .rgb24)))
        while let event = try source.next() {
            if case .frame(let frame) = event, frame.seconds >= seconds - 1e-6 { return frame }
        }
        throw ModelError.missing("no frame at \(seconds) s in \(path)")
    }

    static func detectors() throws -> [MediaPipeDetectors.Graph: BlazeDetector] {
        let store = ModelStore()
        try store.fetch(ModelZoo.mediapipe)
        var detectors: [MediaPipeDetectors.Graph: BlazeDetector] = [:]
        for graph in MediaPipeDetectors.Graph.allCases { detectors[graph] = try MediaPipeDetectors.detector(graph, store: store) }
        return detectors
    }

    @Test func rawOutputsMatchLiteRT() throws {
        let reference = try Self.reference()
        let detectors = try Self.detectors()
        #expect(reference.images.count >= 7)
        for (key, image) in reference.images.sorted(by: { $0.key < $1.key }) {
            let frame = try Self.frame(key)
            #expect(frame.width == image.width && frame.height == image.height, "\(key)")
            for graph in MediaPipeDetectors.Graph.allCases {
                let want = try #require(image.graphs[graph.rawValue])
                let detector = try #require(detectors[graph])
                let outputs = try detector.model.run(detector.input(frame).tensor)
                let boxes = try #require(outputs[graph.configuration.boxesOutput]), scores = try #require(outputs[graph.configuration.scoresOutput])
                let coordinates = graph.configuration.decoding.coordinates
                var worst = 0.0
                for (n, anchor) in want.anchors.enumerated() {
                    worst = max(worst, abs(Double(scores.data[anchor]) - want.scores[n]) / max(1, abs(want.scores[n])))
                    for c in 0..<coordinates {
                        let expected = want.boxes[n][c]
                        worst = max(worst, abs(Double(boxes.data[anchor * coordinates + c]) - expected) / max(1, abs(expected)))
                    }
                }
                // Float16 weights widened exactly, float32 arithmetic in another order than XNNPACK's.
                #expect(worst < 1e-3, "\(key) \(graph.rawValue): largest difference \(worst)")
            }
        }
    }

    @Test func detectionsMatchMediaPipeAndTheReferenceDecoding() throws {
        let reference = try Self.reference()
        let detectors = try Self.detectors()
        for (key, image) in reference.images.sorted(by: { $0.key < $1.key }) {
            let frame = try Self.frame(key)
            for graph in MediaPipeDetectors.Graph.allCases {
                let ours = try #require(detectors[graph]).detect(frame)
                // Faces: MediaPipe's own pipeline. People: the reference script's decoding of LiteRT's outputs
                // (MediaPipe exposes no person-detection-only graph in Python).
                let theirs = graph == .person ? image.graphs[graph.rawValue]?.detections ?? [] : image.mediapipe?[graph.rawValue] ?? []
                #expect(ours.count == theirs.count, "\(key) \(graph.rawValue): \(ours.count) found, reference \(theirs.count)")
                for (a, b) in zip(ours, theirs) {
                    let box = NormalizedDetection(xmin: Float(b.box[0]), ymin: Float(b.box[1]), width: Float(b.box[2]), height: Float(b.box[3]),
                                                  score: Float(b.score), keypoints: [])
                    #expect(a.iou(box) >= 0.95, "\(key) \(graph.rawValue): IoU \(a.iou(box))")
                    #expect(abs(Double(a.score) - b.score) < 0.01, "\(key) \(graph.rawValue): score \(a.score) vs \(b.score)")
                }
            }
        }
    }

    /// The real files, damaged: each either loads or is refused with a ModelError (the tiny
    /// hand-written model in SightlineInferenceTests takes thousands of such mutations).
    @Test func damagedMediaPipeFilesFailCleanly() throws {
        let store = ModelStore()
        try store.fetch(ModelZoo.mediapipe)
        var seed: UInt64 = 31
        func next() -> Int {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Int(seed >> 33)
        }
        var rejected = 0
        for graph in MediaPipeDetectors.Graph.allCases {
            let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try MediaPipeDetectors.path(graph, store: store))))
            for attempt in 0..<60 {
                var bytes = attempt < 10 ? Array(good.prefix(next() % good.count)) : good
                if attempt >= 10 {
                    // The tables sit in the first and last few kilobytes; the middle is weights.
                    for _ in 0..<(1 + next() % 3) {
                        let region = min(8192, bytes.count)
                        let i = next() % 2 == 0 ? next() % region : bytes.count - 1 - next() % region
                        bytes[i] = UInt8(truncatingIfNeeded: next())
                    }
                }
                do {
                    _ = try InferenceModel(graph: try TFLiteLoader.load(bytes: bytes))
                } catch is ModelError {
                    rejected += 1
                } catch {
                    Issue.record("\(graph.rawValue): unexpected error \(error)")
                }
            }
        }
        #expect(rejected >= 30)
    }

    /// The layout Transposes around every NHWC convolution, pad and pool cancel; DEQUANTIZE and DENSIFY leave
    /// no step (the weights were decoded at load).
    @Test func plansKeepNoLayoutShuffles() throws {
        let detectors = try Self.detectors()
        for (graph, detector) in detectors {
            let size = graph.configuration.inputSize
            let summary = try detector.model.planSummary(for: [1, size, size, 3])
            // What stays: the input's (NHWC to NCHW) and one before each head's Reshape (whose
            // flattening order is NHWC's).
            #expect((summary["Transpose"] ?? 0) <= 1 + (summary["Reshape"] ?? 0), "\(graph.rawValue): \(summary)")
            #expect(summary["Dequantize"] == nil && summary["Densify"] == nil)
            #expect((summary["Conv"] ?? 0) + (summary["Conv+DepthwiseConv(fused)"] ?? 0) > 10, "\(graph.rawValue): \(summary)")
        }
    }
}
