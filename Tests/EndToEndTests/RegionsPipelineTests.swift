import Foundation
import Testing
import SightlineTestSupport

/// The region selector and delta inference inside a pipeline: a box moves for two seconds on
/// a still background, then everything stops. Frames where nothing changed reuse the previous
/// results (marked), moving frames are computed sparsely, and the status topic reports it.
@Suite(.serialized) struct RegionsPipelineTests {
    let bin = sightlineBinary()

    @Test func stillFramesReuseResultsAndTheStatusTopicCountsTheWorkSaved() throws {
        let dir = Fixtures.shared.directory
        let video = dir + "/moving-box-\(getpid()).mp4"
        // Lossless, so still frames decode to identical bytes and threshold 0 is exact.
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=10:d=0.1", "-f", "lavfi", "-i", "color=c=red:s=40x40:r=10:d=4",
                                "-filter_complex", "[0:v]loop=loop=-1:size=1,trim=duration=4,setpts=N/10/TB[bg];[bg][1:v]overlay=x='if(lt(t,2),20+t*60,140)':y=90:shortest=1",
                                "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p", video])
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
}
