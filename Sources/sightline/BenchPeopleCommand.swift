import ArgumentParser
import Foundation
import SightlineCore
import SightlineInference
import SightlineMedia
import SightlineModels
import SightlineNodes

/// `sightline bench people`: what the understand pipeline adds per frame for people — BlazeFace
/// (full range) + the BlazePose person detector + the tracker — on 720p frames of a real clip,
/// on one thread, against the 15 ms target; and the two detectors' model time against LiteRT
/// on the same TFLite files, measured in the same run.
struct BenchPeopleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "people",
        abstract: "Faces + people + tracks per 720p frame on one thread (target ≤ 15 ms), with the detectors against LiteRT in the same run.",
        discussion: "The LiteRT part needs python3 with ai-edge-litert==2.3.0 and numpy; without them it is skipped and said so.")

    @Option(help: "Clip (default: the bundled street clip, bikes.mp4, scaled to 1280×720).") var input: String?
    @Option(help: "Frames to time (sampled at 2 per second).") var frames: Int = 20
    @Option(help: "Timed passes over the frames (the median per frame is reported).") var runs: Int = 3
    @Option(help: "Python with ai-edge-litert.") var python: String = "python3"
    @Option(help: "Face detector: full (faces up to about 5 m, the faces node's default) or short (within about 2 m).") var range: String = "full"
    @OptionGroup var cache: ModelCacheOption

    func run() throws {
        if input == nil { _ = try BenchDeltaCommand.sample("bikes.mp4") }  // fetched on first use
        let clip = try input ?? benchClip("people-720p.mp4", from: "bikes.mp4", input: ["-vf", "scale=1280:720"], hint: ", or pass --input")
            
        let decoded = try BenchDeltaCommand.decode(clip, fps: 2, limit: frames)
        guard let first = decoded.first else { throw ValidationError("no frames decoded from \(clip)") }
        try cache.store.fetch(ModelZoo.mediapipe)
        guard range == "full" || range == "short" else { throw ValidationError("--range must be full or short") }
        let faceGraph: MediaPipeDetectors.Graph = range == "short" ? .faceShort : .faceFull
        let faces = try MediaPipeDetectors.detector(faceGraph, store: cache.store, threads: 1)
        var personConfiguration = try MediaPipeDetectors.detector(.person, store: cache.store, threads: 1).configuration
        personConfiguration.decoding.minScore = 0.5
        let people = try BlazeDetector(model: try MediaPipeDetectors.detector(.person, store: cache.store, threads: 1).model, configuration: personConfiguration)
        print("sightline bench people — \(decoded.count) frames of \(clip) (\(first.width)×\(first.height)), 1 thread, median of \(runs) passes; target ≤ 15 ms per frame")

        var perFrame: [Double] = [], faceTimes: [Double] = [], personTimes: [Double] = [], trackTimes: [Double] = []
        var found = (faces: 0, people: 0, tracks: 0)
        for pass in 0..<(runs + 1) {
            var tracker = MultiObjectTracker()
            for frame in decoded {
                let t0 = monotonicSeconds()
                let faceObjects = MediaPipeDetectors.objects(try faces.detect(frame), graph: faceGraph, width: frame.width, height: frame.height)
                let t1 = monotonicSeconds()
                let personObjects = MediaPipeDetectors.objects(try people.detect(frame), graph: .person, width: frame.width, height: frame.height)
                let t2 = monotonicSeconds()
                let detections = personObjects.map { TrackedDetection(label: "person", box: $0.box, score: $0.score) }
                    + faceObjects.map { TrackedDetection(label: "face", box: $0.box, score: $0.score) }
                let update = tracker.update(detections, at: frame.seconds)
                let t3 = monotonicSeconds()
                guard pass > 0 else { continue }  // the first pass warms up
                perFrame.append((t3 - t0) * 1000)
                faceTimes.append((t1 - t0) * 1000)
                personTimes.append((t2 - t1) * 1000)
                trackTimes.append((t3 - t2) * 1000)
                if pass == 1 {
                    found.faces += faceObjects.count
                    found.people += personObjects.count
                    found.tracks = max(found.tracks, update.tracks.count)
                }
            }
        }
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        func p90(_ v: [Double]) -> Double { v.sorted()[min(v.count - 1, v.count * 9 / 10)] }
        print(String(format: "  faces (BlazeFace %@ range, incl. resize)  median %6.2f ms", range, median(faceTimes)))
        print(String(format: "  people (BlazePose detector, incl. resize)    median %6.2f ms", median(personTimes)))
        print(String(format: "  tracks (SORT, both labels)                   median %6.3f ms", median(trackTimes)))
        let total = median(perFrame)
        print(String(format: "faces + people + tracks per frame: median %.2f ms, p90 %.2f ms %@ (found %d faces, %d people; up to %d tracks)",
                     total, p90(perFrame), total <= 15 ? "(target met)" : "(target 15 ms not met)", found.faces, found.people, found.tracks))

        // Model time alone against LiteRT on the same files, same input shapes.
        let script = repositoryFile("Scripts/reference/litert_latency.py")
        for graph in [faceGraph, .person] {
            let path = try MediaPipeDetectors.path(graph, store: cache.store)
            let model = try InferenceModel(graph: try TFLiteLoader.load(path: path), threads: 1)
            let detector = graph == faceGraph ? faces : people
            let input = detector.input(first).tensor
            for _ in 0..<3 { _ = try model.run(input) }
            var times: [Double] = []
            for _ in 0..<30 {
                let start = monotonicSeconds()
                _ = try model.run(input)
                times.append((monotonicSeconds() - start) * 1000)
            }
            let ours = median(times)
            let theirs: Double
            do {
                let output = try runTool(try findExecutable(python), [script, path, input.shape.map(String.init).joined(separator: ","), "1", "30"])
                guard let median = JSONValue.parse(output.split(separator: "\n").last.map(String.init) ?? "")?["median_ms"]?.doubleValue else {
                    throw SightlineError.toolFailed(command: script, reason: "no median_ms in its last line: \(output.suffix(200))")
                }
                theirs = median
            } catch {
                print(String(format: "  %@ model: ours %.2f ms; LiteRT skipped (pip install ai-edge-litert==2.3.0 numpy; --python PATH): %@",
                             graph.rawValue, ours, "\(error)"))
                continue
            }
            print(String(format: "  %@ model: ours %.2f ms, LiteRT %.2f ms, ratio %.2f (ours ÷ LiteRT)", graph.rawValue, ours, theirs, ours / theirs))
        }
    }
}
