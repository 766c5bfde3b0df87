import ArgumentParser
import Foundation
import SightlineCore

/// `sightline bench shots`: shot boundaries on a montage of the real sample clips with known cut
/// frames, through `source → shots` with every frame, 2 frames/s, shot-aware (adaptive) sampling
/// and keyframes only, every frame and adaptive again with `quality: fast` decoding, and adaptive
/// with `mode: nonref` (also on a re-encode with fixed keyframes); precision, recall and F1 at
/// 0.5 s and at one frame, the frames the shots node saw, the frames decoded (decoded again
/// included), and wall time. With --python, PySceneDetect's ContentDetector on the same file in
/// the same run.
struct BenchShotsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shots",
        abstract: "Shot boundaries under sparse sampling on a montage of real clips with known cuts: F1 at 0.5 s and at one frame for every frame, 2 fps, adaptive and keyframes-only, against PySceneDetect.",
        discussion: "The montage (1280x720, 25 fps, H.264) is cut from the bundled samples (Scripts/fetch-sample) and cached in the bench folder. --python needs scenedetect and opencv-python-headless.")

    @Option(help: "Python with scenedetect and opencv-python-headless, to run PySceneDetect in the same run (omit to skip it).") var python: String?
    @Option(help: "Runs of each; the best time counts.") var runs: Int = 1
    @Flag(help: "Also list, per sampling, the cuts missed at one frame and the cuts found where there is none.") var list = false

    /// (sample, start second, frames at 25 fps). Neighbours always come from different clips,
    /// so every boundary is a visible cut; stills (photos) are shots that do not change.
    /// bikes.mp4 has cuts of its own (1.2, 3.04, 5.48, 7.48, 9.68 s: ffmpeg's scene score and
    /// PySceneDetect agree), so its segments lie between them; the other samples have none.
    static let segments: [(String, Double, Int)] = [
        ("vtest.avi", 2, 100), ("bikes.mp4", 1.3, 40), ("tree.avi", 1, 130), ("bigbuckbunny.mp4", 0, 45), ("photos/chelsea.png", 0, 100),
        ("vtest.avi", 30, 40), ("carphone_pristine.mp4", 0, 90), ("tree.avi", 15, 75), ("bikes.mp4", 5.6, 45), ("photos/coffee.png", 0, 80),
        ("bigbuckbunny.mp4", 2, 70), ("vtest.avi", 55, 150), ("bikes.mp4", 3.1, 35), ("tree.avi", 22, 95), ("carphone_pristine.mp4", 1, 55),
        ("photos/astronaut.png", 0, 60), ("vtest.avi", 70, 85), ("bigbuckbunny.mp4", 3.5, 40), ("tree.avi", 8, 120), ("bikes.mp4", 7.6, 50),
    ]
    static let rate = 25.0

    /// Cut times: where each segment after the first starts.
    static var truth: [Double] {
        var frames = 0
        return segments.dropLast().map { segment in
            frames += segment.2
            return Double(frames) / rate
        }
    }

    func run() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        let clip = try Self.montage()
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("sightline-bench-shots-\(getpid())").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let frames = Self.segments.reduce(0) { $0 + $1.2 }
        print("sightline bench shots — \(cpuName()); montage of \(Self.segments.count) real clips, \(frames) frames (\(String(format: "%.1f", Double(frames) / Self.rate)) s, 1280x720 25 fps), \(Self.truth.count) cuts; best of \(runs)")
        print(pad("sampling", 22) + pad("frames seen", 13) + pad("decoded", 10) + pad("wall s", 9) + pad("P/R/F1 @0.5 s", 20) + "P/R/F1 @1 frame")
        let configs: [(String, String)] = [
            ("every frame", ""), ("2 fps", ", fps: 2"), ("adaptive (≤ 2 fps)", ", sampling: adaptive"), ("keyframes only", ", mode: keyframes"),
            // The shots node only wants small frames: the cheaper decode (no loop filter, lowres
            // where the codec has it) must find the same cuts.
            ("every frame, fast", ", quality: fast"), ("adaptive, fast", ", sampling: adaptive, quality: fast"),
            // Skipping non-reference frames: cuts the decoder skipped are decoded again.
            ("adaptive, nonref", ", sampling: adaptive, mode: nonref"),
        ]
        try score(clip: clip, configs: configs, work: work)
        // The same montage as many real files are made: keyframes at a fixed interval, none at
        // the cuts, so most cut frames are B-frames a nonref decode skips.
        let fixedGOP = try Self.fixedGOPMontage(clip)
        print("the same montage re-encoded with a keyframe every 250 frames and none at the cuts (\(Self.keyframes(fixedGOP)) keyframes):")
        try score(clip: fixedGOP, configs: [("adaptive", ", sampling: adaptive"), ("adaptive, nonref", ", sampling: adaptive, mode: nonref")], work: work)
        if let python {
            let (wall, cuts) = try pySceneDetect(python: try findExecutable(python), clip: clip)
            print(pad("PySceneDetect 0.5 s", 22) + pad("\(frames)", 13) + pad("\(frames)", 10) + pad(String(format: "%.2f", wall), 9)
                  + pad(Self.score(cuts, tolerance: 0.5), 20) + Self.score(cuts, tolerance: 1 / Self.rate + 1e-6))
        }
    }

    func score(clip: String, configs: [(String, String)], work: String) throws {
        for (name, options) in configs {
            var best: (wall: Double, cuts: [Double], frames: Int, decoded: Int)?
            for _ in 0..<runs {
                let result = try runPipeline(clip: clip, options: options, work: work)
                if best == nil || result.wall < (best?.wall ?? .infinity) { best = result }
            }
            guard let best else { continue }
            print(pad(name, 22) + pad("\(best.frames)", 13) + pad("\(best.decoded)", 10) + pad(String(format: "%.2f", best.wall), 9)
                  + pad(Self.score(best.cuts, tolerance: 0.5), 20) + Self.score(best.cuts, tolerance: 1 / Self.rate + 1e-6))
            if list { print(Self.differences(best.cuts)) }
        }
    }

    /// The montage re-encoded with x264's scene-cut keyframes off and 250 frames between
    /// keyframes; cached beside it.
    static func fixedGOPMontage(_ montage: String) throws -> String {
        try cachedBenchMedia("shots-montage-720p-v2-fixed-gop.mp4") { partial in
            _ = try runTool(try findExecutable("ffmpeg"), ["-v", "error", "-y", "-i", montage, "-c:v", "libx264", "-preset", "medium",
                                                            "-x264-params", "scenecut=0:keyint=250", "-pix_fmt", "yuv420p", partial])
        }
    }

    static func keyframes(_ clip: String) -> String {
        guard let ffprobe = try? findExecutable("ffprobe"),
              let out = try? runTool(ffprobe, ["-v", "error", "-select_streams", "v:0", "-skip_frame", "nokey", "-show_entries", "frame=key_frame",
                                               "-of", "csv=p=0", clip]) else { return "?" }
        return "\(out.split(separator: "\n").count)"
    }

    /// Truth cuts with no found cut within one frame, and found cuts more than 0.5 s from any.
    static func differences(_ found: [Double]) -> String {
        let frame = 1 / rate + 1e-6
        let missed = truth.filter { t in !found.contains { abs($0 - t) <= frame } }
        let spurious = found.filter { f in !truth.contains { abs($0 - f) <= 0.5 } }
        func times(_ list: [Double]) -> String { list.map { String(format: "%.2f", $0) }.joined(separator: " ") }
        return "    not on the frame: \(times(missed))   not a cut: \(times(spurious))"
    }

    /// "P/R/F1" with cuts matched one to one to the truth within `tolerance`, nearest first.
    static func score(_ found: [Double], tolerance: Double) -> String {
        var unmatched = truth
        var hits = 0
        for cut in found.sorted() {
            guard let i = unmatched.indices.min(by: { abs(unmatched[$0] - cut) < abs(unmatched[$1] - cut) }),
                  abs(unmatched[i] - cut) <= tolerance else { continue }
            unmatched.remove(at: i)
            hits += 1
        }
        let precision = found.isEmpty ? 0 : Double(hits) / Double(found.count)
        let recall = Double(hits) / Double(truth.count)
        let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
        return String(format: "%.2f/%.2f/%.2f", precision, recall, f1)
    }

    func runPipeline(clip: String, options: String, work: String) throws -> (wall: Double, cuts: [Double], frames: Int, decoded: Int) {
        let file = work + "/shots.yaml", output = work + "/shots.jsonl"
        try """
        pipeline: bench-shots
        heartbeat: 3600
        nodes:
          cam: {type: source, url: "\(clip)", size: 320x180\(options)}
          shots: {type: shots}
          file: {type: jsonl, path: "\(output)"}
        edges:
          - cam -> shots
          - shots -> file
        """.write(toFile: file, atomically: true, encoding: .utf8)
        try? FileManager.default.removeItem(atPath: output)
        let started = monotonicSeconds()
        _ = try runTool(ownExecutable(), ["run", file, "--quiet"])
        let wall = monotonicSeconds() - started
        var cuts: [Double] = [], frames = 0, decoded = 0
        for line in try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n") {
            guard let message = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let topic = message["topic"] as? String, let header = message["header"] as? [String: Any],
                  let data = header["data"] as? [String: Any] else { continue }
            if topic.hasPrefix("shots"), (data["index"] as? Int ?? 0) > 0, let start = header["pts_start"] as? Double {
                cuts.append(start)
            } else if let emitted = data["frames_emitted"] as? Int {
                frames = emitted
                decoded = (data["frames_decoded"] as? Int ?? 0) + (data["frames_redecoded"] as? Int ?? 0)
            }
        }
        return (wall, cuts, frames, decoded)
    }

    func pySceneDetect(python: String, clip: String) throws -> (Double, [Double]) {
        let script = """
        import sys, time
        from scenedetect import detect, ContentDetector
        t = time.monotonic()
        scenes = detect(sys.argv[1], ContentDetector())
        print(time.monotonic() - t)
        for start, _ in scenes[1:]:
            print(start.seconds if hasattr(type(start), "seconds") else start.get_seconds())
        """
        let lines = try runTool(python, ["-c", script, clip]).split(separator: "\n").compactMap { Double($0) }
        guard let wall = lines.first else { throw ValidationError("PySceneDetect printed nothing") }
        return (wall, Array(lines.dropFirst()))
    }

    /// The montage, made once with ffmpeg from the samples and cached.
    static func montage() throws -> String {
        try cachedBenchMedia("shots-montage-720p-v2.mp4") { partial in
            let root = cacheRoot()
            var inputs: [String] = [], filters: [String] = []
            for (i, (name, start, frames)) in segments.enumerated() {
                let sample = name.hasPrefix("photos/") ? root + "/samples/" + name : try BenchDeltaCommand.sample(name)
                guard FileManager.default.fileExists(atPath: sample) else {
                    throw ValidationError("no sample at \(sample): run Scripts/fetch-sample first")
                }
                let seconds = String(format: "%.2f", Double(frames) / rate + 1)
                inputs += name.hasPrefix("photos/") ? ["-loop", "1", "-framerate", "25", "-t", seconds, "-i", sample]
                                                    : ["-ss", String(start), "-t", seconds, "-i", sample]
                filters.append("[\(i):v]fps=25,scale=1280:720,setsar=1,format=yuv420p,trim=end_frame=\(frames),setpts=PTS-STARTPTS[v\(i)]")
            }
            let graph = filters.joined(separator: ";") + ";" + (0..<segments.count).map { "[v\($0)]" }.joined()
                + "concat=n=\(segments.count):v=1:a=0[out]"
            _ = try runTool(try findExecutable("ffmpeg"), ["-v", "error", "-y"] + inputs + ["-filter_complex", graph, "-map", "[out]",
                            "-c:v", "libx264", "-preset", "medium", "-pix_fmt", "yuv420p", partial])
        }
    }
}
