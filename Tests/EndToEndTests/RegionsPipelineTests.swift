import Foundation
import Testing
import SightlineTestSupport

/// The region selector and delta inference inside a pipeline: a box moves for two seconds on
/// a still background, then everything stops. Frames where nothing changed reuse the previous
/// results (marked), moving frames are computed sparsely, and the status topic reports it.
@Suite(.serialized) struct RegionsPipelineTests {
    let bin = sightlineBinary()

    /// A red box moving over a still picture for 2 s, then standing still until `seconds`, at
    /// 10 fps. Lossless, so still frames decode to identical bytes and threshold 0 is exact.
    static func movingBoxClip(_ name: String, seconds: Int) throws -> String {
        let video = Fixtures.shared.directory + "/\(name)-\(getpid()).mp4"
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=10:d=0.1", "-f", "lavfi", "-i", "color=c=red:s=40x40:r=10:d=\(seconds)",
                                "-filter_complex", "[0:v]loop=loop=-1:size=1,trim=duration=\(seconds),setpts=N/10/TB[bg];[bg][1:v]overlay=x='if(lt(t,2),20+t*60,140)':y=90:shortest=1",
                                "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p", video])
        return video
    }

    @Test func stillFramesReuseResultsAndTheStatusTopicCountsTheWorkSaved() throws {
        let dir = Fixtures.shared.directory
        let video = try Self.movingBoxClip("moving-box", seconds: 4)
        let pipeline = dir + "/regions-\(getpid()).yaml"
        let out = dir + "/regions-\(getpid()).jsonl"
        try """
        pipeline: regions
        nodes:
          cam: {type: source, url: \(video), fps: 5}
          regions: {type: regions, threshold: 0, refresh_every: 1000, report_every: 5}
          labels: {type: labels, delta: true, embeddings: true}
          nsfw: {type: nsfw, delta: true}
          file: {type: jsonl, path: \(out)}
        edges:
          - cam -> regions
          - regions -> labels
          - labels -> nsfw
          - nsfw -> file
        """.write(toFile: pipeline, atomically: true, encoding: .utf8)
        try Tool.run(bin, ["run", pipeline, "--quiet"])
        let messages = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        func data(_ m: [String: Any]) -> [String: Any] { ((m["header"] as? [String: Any])?["data"] as? [String: Any]) ?? [:] }
        func start(_ m: [String: Any]) -> Double { ((m["header"] as? [String: Any])?["pts_start"] as? Double) ?? -1 }
        let regions = messages.filter { ($0["topic"] as? String) == "regions/cam/" }
        let labels = messages.filter { ($0["topic"] as? String) == "labels/cam/" }
        #expect(regions.count == 20 && labels.count == 20)
        // Moving: a few tiles changed, computed sparsely. Still: skipped, results reused.
        let moving = regions.filter { start($0) > 0.1 && start($0) < 1.9 }
        #expect(moving.allSatisfy { data($0)["skip"] as? Bool == false && (data($0)["changed_fraction"] as? Double ?? 1) < 0.3 }, "\(moving.map(data))")
        let still = regions.filter { start($0) > 2.3 }
        #expect(!still.isEmpty && still.allSatisfy { data($0)["skip"] as? Bool == true })
        #expect(labels.filter { start($0) > 2.3 }.allSatisfy { data($0)["reused"] as? Bool == true })
        #expect(labels.filter { start($0) > 0.1 && start($0) < 1.9 }.allSatisfy { (data($0)["delta"] as? [String: Any])?["work_saved"] as? Double ?? 0 > 0 })
        let status = messages.filter { ($0["topic"] as? String) == "status/cam/" }.map(data)
        let delta = status.filter { $0["event"] as? String == "delta" && $0["node"] as? String == "labels" }
        #expect((delta.last?["work_saved"] as? Double ?? 0) > 0.3, "\(delta)")
        #expect((delta.last?["reused"] as? Int ?? 0) >= 8)
        #expect(status.contains { $0["event"] as? String == "regions" && ($0["tiles_computed_fraction"] as? Double ?? 1) < 0.5 })
    }

    /// `gate: true` on nodes without delta inference (OCR, people, NSFW): moving frames run,
    /// still ones reuse the last results (marked) until `gate_refresh` seconds have passed.
    @Test func gatedNodesRunOnlyWhereSomethingMovedAndRefreshOnTime() throws {
        let dir = Fixtures.shared.directory
        let video = try Self.movingBoxClip("moving-box-gate", seconds: 5)
        let pipeline = dir + "/gate-\(getpid()).yaml"
        let out = dir + "/gate-\(getpid()).jsonl"
        try """
        pipeline: gate
        nodes:
          cam: {type: source, url: \(video), fps: 5}
          regions: {type: regions, threshold: 0, refresh_every: 1000, report_every: 5}
          people: {type: people, gate: true, gate_refresh: 1.5}
          nsfw: {type: nsfw, gate: true, gate_refresh: 1.5}
          ocr: {type: ocr, gate: true, gate_refresh: 1.5}
          file: {type: jsonl, path: \(out)}
        edges:
          - cam -> regions
          - regions -> people
          - people -> nsfw
          - nsfw -> ocr
          - ocr -> file
        """.write(toFile: pipeline, atomically: true, encoding: .utf8)
        try Tool.run(bin, ["run", pipeline, "--quiet"])
        let messages = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        func data(_ m: [String: Any]) -> [String: Any] { ((m["header"] as? [String: Any])?["data"] as? [String: Any]) ?? [:] }
        func start(_ m: [String: Any]) -> Double { ((m["header"] as? [String: Any])?["pts_start"] as? Double) ?? -1 }
        for topic in ["people/cam/", "nsfw/cam/", "ocr/cam/"] {
            let records = messages.filter { ($0["topic"] as? String) == topic }
            #expect(records.count == 25, "\(topic): one record per sampled frame, reused or not")
            let reused = records.filter { data($0)["reused"] as? Bool == true }.map(start)
            let computed = records.filter { data($0)["reused"] as? Bool != true }.map(start)
            // Moving (0.2–1.8 s): every frame runs. Still (from 2 s): reused, except the
            // refreshes at most 1.5 s apart.
            #expect(computed.filter { $0 > 0.1 && $0 < 1.9 }.count == 9, "\(topic) computed \(computed)")
            let still = computed.filter { $0 > 2.1 }
            #expect(!still.isEmpty && still.count <= 3, "\(topic): refreshes while still at \(still)")
            #expect(reused.count >= 9 && reused.allSatisfy { $0 > 1.9 }, "\(topic) reused \(reused)")
            #expect(zip([2.0] + still, still + [5.0]).allSatisfy { $1 - $0 <= 1.5 + 0.21 }, "\(topic): a result stands for at most 1.5 s")
        }
        // The OCR record of a reused frame is the computed one, standing for this frame.
        let ocr = messages.filter { ($0["topic"] as? String) == "ocr/cam/" }.map(data)
        #expect(Set(ocr.map { ($0["lines"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String } }).count <= 2)
        let status = messages.filter { ($0["topic"] as? String) == "status/cam/" }.map(data)
        let gated = status.filter { $0["event"] as? String == "delta" && $0["node"] as? String == "ocr" }
        #expect((gated.last?["reused"] as? Int ?? 0) >= 9, "\(gated)")
    }
}
