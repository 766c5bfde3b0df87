import ArgumentParser
import Foundation
import SightlineCore

/// `sightline bench sparse`: the model nodes dense on every sampled frame vs gated by motion
/// (`gate: true` behind a `regions` node), on a fixed-camera clip and a slides clip. Both runs
/// are the same pipeline, in the same process kind, one after the other: dense is the gate with
/// a refresh shorter than the sampling interval, so every frame computes and the model time is
/// counted the same way (the nodes' `delta` status events). Then the outputs are compared frame
/// by frame: people boxes (IoU ≥ 0.9), the labels' hierarchical concept, OCR text.
struct BenchSparseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sparse",
        abstract: "Motion-gated model nodes vs dense on a fixed-camera clip and a slides clip: model time per node, and agreement with dense.",
        discussion: "Targets: fixed camera ≥ 5× less model time with the same people boxes (IoU ≥ 0.9), hierarchical labels and OCR text; slides: OCR ≥ 5× cheaper with identical text.")

    @Argument(help: "Clips (default: vtest.avi, fetched by Scripts/fetch-sample; a 60 s 720p slides clip, a 40 s 720p screen recording of a build log being written, and a 30 s 720p clip with a static news ticker over moving video, made with ffmpeg).") var clips: [String] = []
    @Option(help: "Sampled frames per second.") var fps: Double = 2
    @Option(help: "Gated nodes recompute at least this often (seconds of media time).") var gateRefresh: Double = 10
    @Flag(help: "Gated OCR also detects text only around changed tiles (the ocr node's changed_tiles, approximate).") var changedTiles = false

    static let nodes = ["people", "faces", "labels", "nsfw", "ocr"]

    func run() throws {
        let paths = clips.isEmpty ? [try BenchDeltaCommand.sample("vtest.avi"), try Self.slidesClip(), try Self.screenClip(), try Self.tickerClip()] : clips
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("sightline-bench-sparse-\(getpid())").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        print("sightline bench sparse — \(Self.nodes.joined(separator: ", ")) at \(fps) frames/s; dense vs gated (regions node, gate_refresh \(gateRefresh) s); 1 thread per node")
        for path in paths {
            let name = URL(fileURLWithPath: path).lastPathComponent
            let dense = try runPipeline(clip: path, refresh: min(0.1, 0.5 / fps), dense: true, output: work + "/dense.jsonl", work: work)
            let gated = try runPipeline(clip: path, refresh: gateRefresh, dense: false, output: work + "/gated.jsonl", work: work)
            print("\n\(name): \(dense.frames) sampled frames; wall \(String(format: "%.1f", dense.wall)) s dense, \(String(format: "%.1f", gated.wall)) s gated")
            // The nodes' times below are their calls' wall time, which grows when the other
            // nodes compete for the cores; the process's CPU time does not.
            print(String(format: "CPU of the whole pipeline (decoding and regions included): %.1f s dense, %.1f s gated (%.2f× less)",
                         dense.cpu, gated.cpu, gated.cpu > 0 ? dense.cpu / gated.cpu : 0))
            print(pad("node", 9) + pad("dense s", 10) + pad("gated s", 10) + pad("less ×", 9) + pad("reused", 10) + "agreement with dense")
            var totals = (dense: 0.0, gated: 0.0)
            for node in Self.nodes {
                let d = dense.modelSeconds[node] ?? 0, g = gated.modelSeconds[node] ?? 0
                totals.dense += d
                totals.gated += g
                print(pad(node, 9) + pad(String(format: "%.2f", d), 10) + pad(String(format: "%.2f", g), 10)
                      + pad(g > 0 ? String(format: "%.1f×", d / g) : "-", 9) + pad("\(gated.reused[node] ?? 0)/\(gated.frames)", 10)
                      + Self.agreement(node, dense: dense.records, gated: gated.records))
            }
            print(pad("all", 9) + pad(String(format: "%.2f", totals.dense), 10) + pad(String(format: "%.2f", totals.gated), 10)
                  + pad(totals.gated > 0 ? String(format: "%.1f×", totals.dense / totals.gated) : "-", 9))
        }
    }

    struct Outcome {
        var wall: Double
        /// User and system CPU time of the pipeline's process.
        var cpu: Double
        var frames: Int
        var modelSeconds: [String: Double]
        var reused: [String: Int]
        /// data by topic kind, then by media time.
        var records: [String: [Double: [String: Any]]]
    }

    /// `dense`: every frame computes in full (OCR detects on the whole frame, recognises every
    /// line and forgets its false alarms); otherwise the nodes' defaults (OCR keeps the readings
    /// of unchanged lines and skips the full-size detector on alarms already refuted).
    func runPipeline(clip: String, refresh: Double, dense: Bool, output: String, work: String) throws -> Outcome {
        let file = work + "/sparse.yaml"
        let gated = Self.nodes.map { node -> String in
            let whole = node != "ocr" ? "" : (dense ? ", changed_tiles: false, keep_unchanged_lines: false, remember_false_alarms: false" : ", changed_tiles: \(changedTiles)")
            return "  \(node): {type: \(node), gate: true, gate_refresh: \(refresh)\(whole)}"
        }.joined(separator: "\n")
        try """
        pipeline: sparse
        heartbeat: 3600
        nodes:
          cam: {type: source, url: "\(clip)", fps: \(fps)}
          shots: {type: shots}
          regions: {type: regions}
        \(gated)
          file: {type: jsonl, path: "\(output)"}
        edges:
          - cam -> shots
          - shots -> regions
          - regions -> \(Self.nodes[0])
        \(zip(Self.nodes, Self.nodes.dropFirst()).map { "  - \($0) -> \($1)" }.joined(separator: "\n"))
          - \(Self.nodes.last ?? "ocr") -> file
        """.write(toFile: file, atomically: true, encoding: .utf8)
        try? FileManager.default.removeItem(atPath: output)
        let started = monotonicSeconds(), cpuBefore = childrenCPUSeconds()
        _ = try runTool(ownExecutable(), ["run", file, "--quiet"])
        let wall = monotonicSeconds() - started, cpuAfter = childrenCPUSeconds()
        let cpu = (cpuAfter.user - cpuBefore.user) + (cpuAfter.system - cpuBefore.system)
        var outcome = Outcome(wall: wall, cpu: cpu, frames: 0, modelSeconds: [:], reused: [:], records: [:])
        for line in try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n") {
            guard let message = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let topic = message["topic"] as? String, let header = message["header"] as? [String: Any],
                  let data = header["data"] as? [String: Any] else { continue }
            let kind = String(topic.prefix { $0 != "/" })
            if kind == "status", data["event"] as? String == "delta", let node = data["node"] as? String {
                // Counts are cumulative; the last event of a run holds the totals.
                outcome.modelSeconds[node] = data["model_seconds"] as? Double ?? 0
                outcome.reused[node] = data["reused"] as? Int ?? 0
                outcome.frames = max(outcome.frames, data["frames"] as? Int ?? 0)
            } else if let start = header["pts_start"] as? Double {
                outcome.records[kind, default: [:]][start] = data
            }
        }
        return outcome
    }

    /// How often the gated run said what the dense run said, over the frames both have.
    static func agreement(_ node: String, dense: [String: [Double: [String: Any]]], gated: [String: [Double: [String: Any]]]) -> String {
        let a = dense[node] ?? [:], b = gated[node] ?? [:]
        let times = Set(a.keys).intersection(b.keys)
        func count(_ same: ([String: Any], [String: Any]) -> Bool) -> String {
            let n = times.filter { t in a[t].flatMap { x in b[t].map { same(x, $0) } } ?? false }.count
            return "\(n)/\(times.count) frames" + (times.count == a.count ? "" : " (dense \(a.count) frames)")
        }
        switch node {
        case "people", "faces":
            return count { sameBoxes($0[node], $1[node]) } + " same boxes (IoU ≥ 0.9)"
        case "labels":
            func concept(_ data: [String: Any]?) -> String? { (data?["concept"] as? [String: Any])?["name"] as? String }
            // The ceiling for any reuse: how often dense itself names the frame before's concept
            // (the whole-frame labels flicker on a scene that does not change).
            let ordered = a.keys.sorted()
            let steady = zip(ordered, ordered.dropFirst()).filter { concept(a[$0.0]) == concept(a[$0.1]) }.count
            return count { concept($0) == concept($1) } + " same concept (dense frame to frame: \(steady)/\(max(ordered.count - 1, 0)))"
        case "nsfw":
            let worst = times.map { abs(((a[$0]?["score"] as? Double) ?? 0) - ((b[$0]?["score"] as? Double) ?? 0)) }.max() ?? 0
            return String(format: "largest score difference %.3f", worst)
        case "ocr":
            return count { texts($0) == texts($1) } + " identical text"
        default:
            return ""
        }
    }

    static func texts(_ data: [String: Any]) -> [String] {
        ((data["lines"] as? [[String: Any]]) ?? []).compactMap { $0["text"] as? String }.sorted()
    }

    /// Same number of boxes, each matched one to one at IoU ≥ 0.9 (greedy by best overlap).
    static func sameBoxes(_ x: Any?, _ y: Any?) -> Bool {
        func boxes(_ v: Any?) -> [[Double]] { ((v as? [[String: Any]]) ?? []).compactMap { $0["box"] as? [Double] }.filter { $0.count == 4 } }
        var left = boxes(x), right = boxes(y)
        guard left.count == right.count else { return false }
        func iou(_ p: [Double], _ q: [Double]) -> Double {
            let w = max(0, min(p[0] + p[2], q[0] + q[2]) - max(p[0], q[0])), h = max(0, min(p[1] + p[3], q[1] + q[3]) - max(p[1], q[1]))
            let union = p[2] * p[3] + q[2] * q[3] - w * h
            return union > 0 ? w * h / union : 0
        }
        while let p = left.popLast() {
            guard let best = right.indices.max(by: { iou(p, right[$0]) < iou(p, right[$1]) }), iou(p, right[best]) >= 0.9 else { return false }
            right.remove(at: best)
        }
        return true
    }

    /// A 60 s 1280×720 slides clip, made once with ffmpeg and cached: six slides of text, ten
    /// seconds each, with a pointer that moves over the third and fifth (a screen recording).
    static func slidesClip() throws -> String {
        let font = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
        guard FileManager.default.fileExists(atPath: font) else { throw ValidationError("no font at \(font) (Debian's fonts-dejavu-core)") }
        let slides = [
            ["Quarterly review", "Revenue grew in every region", "Costs stayed flat", "Hiring is on track"],
            ["Product roadmap", "Faster search across cameras", "Better captions for people", "Lower memory per stream"],
            ["Customer feedback", "Setup takes minutes", "Results are easy to review", "Alerts arrive on time"],
            ["Open questions", "Which regions grow next year", "How many cameras per site", "When to retire old servers"],
            ["Timeline", "Beta in March", "General release in June", "Support for older hardware"],
            ["Thank you", "Questions are welcome", "Slides are online", "Contact the team"],
        ]
        var filters: [String] = []
        for (i, slide) in slides.enumerated() {
            let window = "enable='between(t,\(i * 10),\(i * 10 + 10) - 0.001)'"
            for (j, line) in slide.enumerated() {
                let size = j == 0 ? 64 : 44
                filters.append("drawtext=fontfile=\(font):text='\(line)':fontsize=\(size):fontcolor=black:x=120:y=\(j == 0 ? 100 : 200 + j * 110):\(window)")
            }
        }
        // The pointer: a small dark square moving over slides 3 (20–30 s) and 5 (40–50 s).
        let pointer = "overlay=x='if(between(t,20,30)+between(t,40,50),700+mod(t*40,300),1200)':y='500+20*sin(t)'"
        return try cachedBenchMedia("slides-720p-60s.mp4") { partial in
            _ = try runTool(try findExecutable("ffmpeg"), ["-v", "error", "-y", "-f", "lavfi", "-i", "color=c=white:s=1280x720:r=30:d=60",
                                                           "-f", "lavfi", "-i", "color=c=0x202020:s=14x20:r=30:d=60",
                                                           "-filter_complex", "[0:v]" + filters.joined(separator: ",") + "[bg];[bg][1:v]" + pointer + ":shortest=1",
                                                           "-c:v", "libx264", "-preset", "medium", "-pix_fmt", "yuv420p", partial])
        }
    }

    /// A 30 s 1280×720 clip with a static news ticker (a dark band with two lines of text)
    /// over moving video (Big Buck Bunny, looped), made once with ffmpeg and cached.
    static func tickerClip() throws -> String {
        let font = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
        guard FileManager.default.fileExists(atPath: font) else { throw ValidationError("no font at \(font) (Debian's fonts-dejavu-core)") }
        let video = try BenchDeltaCommand.sample("bigbuckbunny.mp4")
        let band = [
            "scale=1280:720", "drawbox=x=0:y=590:w=1280:h=130:color=0x102040:t=fill",
            "drawtext=fontfile=\(font):text='BREAKING NEWS':fontsize=34:fontcolor=yellow:x=40:y=606",
            "drawtext=fontfile=\(font):text='City council approves the new budget':fontsize=32:fontcolor=white:x=40:y=660",
            "drawtext=fontfile=\(font):text='LIVE':fontsize=30:fontcolor=white:box=1:boxcolor=red:boxborderw=8:x=1150:y=30",
        ]
        return try cachedBenchMedia("ticker-720p-30s.mp4") { partial in
            _ = try runTool(try findExecutable("ffmpeg"), ["-v", "error", "-y", "-stream_loop", "6", "-i", video, "-t", "30", "-an",
                                                           "-vf", band.joined(separator: ","), "-r", "25",
                                                           "-c:v", "libx264", "-preset", "medium", "-pix_fmt", "yuv420p", partial])
        }
    }

    /// A 40 s 1280×720 screen recording, made once with ffmpeg and cached: a terminal whose
    /// build log gains a line every two seconds, under a title bar whose clock ticks each second.
    static func screenClip() throws -> String {
        let font = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
        guard FileManager.default.fileExists(atPath: font) else { throw ValidationError("no font at \(font) (Debian's fonts-dejavu-core)") }
        let log = [
            "Fetching dependencies", "Resolving package graph", "Compiling SightlineCore", "Compiling SightlineKernels",
            "Compiling SightlineMedia", "Compiling SightlineModels", "Compiling SightlineNodes", "Linking sightline",
            "Running unit tests", "Decoder tests passed", "Kernel tests passed", "Model tests passed",
            "Node tests passed", "Packaging release", "Uploading artifacts", "Build finished",
        ]
        var filters = [
            "drawbox=x=0:y=0:w=1280:h=60:color=0x303030:t=fill",
            "drawtext=fontfile=\(font):text='Terminal - build log':fontsize=28:fontcolor=white:x=30:y=16",
            "drawtext=fontfile=\(font):text='Elapsed %{eif\\:t\\:d} s':fontsize=28:fontcolor=white:x=1000:y=16",
        ]
        for (i, line) in log.enumerated() {
            filters.append("drawtext=fontfile=\(font):text='\(line)':fontsize=26:fontcolor=0x20e020:x=40:y=\(90 + i * 38):enable='gte(t,\(2 * i + 1))'")
        }
        return try cachedBenchMedia("screen-720p-40s.mp4") { partial in
            _ = try runTool(try findExecutable("ffmpeg"), ["-v", "error", "-y", "-f", "lavfi", "-i", "color=c=0x101010:s=1280x720:r=30:d=40",
                                                           "-vf", filters.joined(separator: ","),
                                                           "-c:v", "libx264", "-preset", "medium", "-pix_fmt", "yuv420p", partial])
        }
    }
}
