import ArgumentParser
import Foundation
import SightlineBus
import SightlineCore
import SightlineInference
import SightlineKernels
import SightlineMedia
import SightlineModels
import SightlineNodes

struct DetectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect", abstract: "Find faces or people in an image or video (per sampled frame) and print their boxes.",
        discussion: """
        Models: face-full (faces up to about 5 m), face-short (within about 2 m: selfies, talking heads), person (a body box \
        around the hip centre and the face box). Boxes are in image pixels: x, y, width, height. The models are fetched on \
        first use (mediapipe==0.10.14 from PyPI, sha256-checked).

        With --motion-crops (video from a still camera) the detector looks in square crops around what moved since the \
        last sampled frame, where small, distant people and faces show larger than in the whole frame, and keeps what it \
        found before away from every change; frames where the picture itself moves are looked at whole.
        """)

    @Argument(help: "face-full, face-short or person.") var model: String
    @Argument(help: "An image or video file, or a URL.") var input: String
    @Option(help: "Video: frames per second of media time to look at.") var fps: Double = 1
    @Option(help: "Keep detections scoring at least this (default: the model's own threshold).") var minScore: Double?
    @Option(help: "Compute threads (0: all cores).") var threads: Int = 0
    @Flag(help: "Video from a still camera: look in crops around what moved (as the people and faces nodes' motion_crops).")
    var motionCrops = false
    @Flag(help: "One JSON object per frame, as the bus's faces/people data (Docs/bus.md) plus seconds.")
    var json = false
    @OptionGroup var cache: ModelCacheOption

    func run() throws {
        FFmpegLogLevel.quiet.apply()
        KernelThreads.setBLASThreads(1)
        guard let graph = MediaPipeDetectors.Graph(rawValue: model) else {
            throw CommandError("no detector named '\(model)'",
                               hint: "choose one of \(MediaPipeDetectors.Graph.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard fps > 0, fps.isFinite else { throw CommandError("--fps must be a positive number, got \(fps)") }
        let store = cache.store
        try store.fetch(ModelZoo.mediapipe)
        let cores = threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount
        var detector: BlazeDetector
        do {
            detector = try MediaPipeDetectors.detector(graph, store: store, threads: cores)
        } catch let error as ModelError {
            throw ErrorInContext("model '\(model)'", error)
        }
        if let minScore {
            var configuration = detector.configuration
            configuration.decoding.minScore = Float(minScore)
            detector = try BlazeDetector(model: detector.model, configuration: configuration)
        }
        let rate = Rational(parsing: String(fps)) ?? Rational(1, 1)
        let source = VideoSource(url: input, options: SourceOptions(sampling: .perSecond(rate), output: OutputFormat(pixelFormat: .rgb24)))
        // --motion-crops: the regions node's selector and the detector nodes' crop search.
        var selector = RegionSelector()
        var carried = DetectionCarryOver()
        let planner = MotionCropPlanner()
        while let event = try source.next() {
            guard case .frame(let frame) = event else { continue }
            let objects: [DetectedObject]
            if motionCrops {
                let decision = selector.push(frame)
                objects = try MotionCropDetection.detect(frame, changed: decision.refresh ? nil : decision.tiles, detector: detector, graph: graph,
                                                         planner: planner, state: &carried)
            } else {
                objects = MediaPipeDetectors.objects(try detector.detect(frame), graph: graph, width: frame.width, height: frame.height)
            }
            if json {
                // The bus's own encoding of a faces/people result (Docs/bus.md), plus the time.
                let kind: ResultValue = graph == .person
                    ? .people(Detections(frameIndex: frame.decodeIndex, width: frame.width, height: frame.height, objects: objects))
                    : .faces(Detections(frameIndex: frame.decodeIndex, width: frame.width, height: frame.height, objects: objects))
                var data = WireEncoding.data(kind)
                data["seconds"] = .double((frame.seconds * 1000).rounded() / 1000)
                print(JSONValue.object(data).jsonText)
                continue
            }
            print(String(format: "%8.3f s  %d found", frame.seconds, objects.count))
            for o in objects {
                print(String(format: "            %.3f  box %.0f,%.0f %.0fx%.0f", o.score, o.box.x, o.box.y, o.box.width, o.box.height)
                      + (o.face.map { String(format: "  face %.0f,%.0f %.0fx%.0f", $0.x, $0.y, $0.width, $0.height) } ?? ""))
            }
        }
    }
}
