import Foundation
import SightlineTestSupport
import Testing

/// `vlm_captions` in a whole pipeline against a local server that speaks the protocol:
/// captions come from the server with provenance, a second run is answered from the cache,
/// a broken server leaves the built-in captions (marked) and the status topic says why, and
/// with no server configured the pipeline runs as before.
@Suite(.serialized) struct VLMCaptionsTests {
    let bin = sightlineBinary()

    func setUp(_ name: String) throws -> (folder: String, clip: String, policy: String) {
        let folder = NSTemporaryDirectory() + "sightline-vlm-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let clip = folder + "/clip.mp4"
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10:duration=4", "-pix_fmt", "yuv420p",
                                "-c:v", "libx264", "-preset", "ultrafast", clip])
        let policy = folder + "/policy.yaml"
        try """
        version: 1
        categories:
          profanity: {rule: text, terms: [damn], enter: 1, exit: 1, min_duration: 0}
        """.write(toFile: policy, atomically: true, encoding: .utf8)
        return (folder, clip, policy)
    }

    func pipeline(_ folder: String, clip: String, policy: String, endpoint: String) throws -> String {
        let path = folder + "/vlm.yaml"
        try """
        pipeline: vlm-test
        defaults: {policy: block, capacity: 8}
        nodes:
          cam: {type: source, url: "\(clip)", fps: 2}
          labels: {type: labels, top: 3}
          captions: {type: captions, window: 2}
          vlm: {type: vlm_captions, endpoint: "\(endpoint)", model: test-vl, timeout: 5, retries: 1, policy: "\(policy)", frames: 2}
          out: {type: jsonl, path: out.jsonl}
        edges:
          - cam -> labels
          - labels -> captions
          - captions -> vlm
          - vlm -> out
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// (topic, data, provenance) of every message in a jsonl file.
    func messages(_ path: String) throws -> [(topic: String, data: [String: Any], provenance: [[String: Any]])] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").compactMap { line in
            guard let message = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let topic = message["topic"] as? String, let header = message["header"] as? [String: Any] else { return nil }
            return (topic, header["data"] as? [String: Any] ?? [:], header["provenance"] as? [[String: Any]] ?? [])
        }
    }

    @Test func captionsComeFromTheServerWithProvenanceAndASecondRunFromTheCache() throws {
        let (folder, clip, policy) = try setUp("ok")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let server = try FakeModelServer { _, n in .answer("Coloured test bars behind a damn moving circle (\(n)).") }
        defer { server.stop() }
        let file = try pipeline(folder, clip: clip, policy: policy, endpoint: server.url)
        let first = try Tool.run(bin, ["run", file, "--output", folder + "/one"], check: false)
        #expect(first.status == 0, "\(first.stderr)")
        let captions = try messages(folder + "/one/out.jsonl").filter { $0.topic.hasPrefix("captions/") }
        #expect(captions.count == 2, "\(captions.map(\.data))")
        for caption in captions {
            let text = caption.data["caption"] as? String ?? ""
            #expect(text.hasPrefix("Coloured test bars behind a d*** moving circle"), "masked like built-in captions: \(text)")
            let names = caption.provenance.compactMap { $0["name"] as? String }
            #expect(names.first == "test-vl" && names.filter { $0 == "frame" }.count == 2, "\(caption.provenance)")
            #expect((caption.provenance.first?["version"] as? String) == "vlm@127.0.0.1")
            #expect(!names.contains("vlm-fallback"))
        }
        // Each request carried two JPEG frames and the built-in evidence.
        #expect(server.requests.count == 2)
        let prompt = (((server.requests.first?.json?["messages"] as? [[String: Any]])?.first?["content"] as? [[String: Any]])?.first?["text"] as? String) ?? ""
        #expect(prompt.contains("An automatic system noted:") && prompt.contains("0:00.0"), "\(prompt)")

        // Again, with the same cache folder: no request reaches the server.
        try FileManager.default.moveItem(atPath: folder + "/one/vlm-cache", toPath: folder + "/vlm-cache-kept")
        try FileManager.default.createDirectory(atPath: folder + "/two", withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: folder + "/vlm-cache-kept", toPath: folder + "/two/vlm-cache")
        let second = try Tool.run(bin, ["run", file, "--output", folder + "/two"], check: false)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(server.requests.count == 2, "the second run asked the server again")
        let again = try messages(folder + "/two/out.jsonl").filter { $0.topic.hasPrefix("captions/") }
        #expect(again.count == 2 && again.allSatisfy { $0.provenance.contains { ($0["name"] as? String) == "vlm-cache" } })
        #expect(again.map { $0.data["caption"] as? String } == captions.map { $0.data["caption"] as? String })
    }

    @Test func aBrokenServerLeavesTheBuiltInCaptionsMarkedAndSaysWhy() throws {
        let (folder, clip, policy) = try setUp("broken")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let server = try FakeModelServer { _, _ in .status(500) }
        defer { server.stop() }
        let run = try Tool.run(bin, ["run", try pipeline(folder, clip: clip, policy: policy, endpoint: server.url), "--output", folder], check: false)
        #expect(run.status == 0, "\(run.stderr)")
        let all = try messages(folder + "/out.jsonl")
        let captions = all.filter { $0.topic.hasPrefix("captions/") }
        #expect(captions.count == 2)
        for caption in captions {
            let fallback = caption.provenance.first { ($0["name"] as? String) == "vlm-fallback" }
            #expect((fallback?["version"] as? String)?.contains("HTTP 500") == true, "\(caption.provenance)")
        }
        let reasons = all.filter { $0.topic.hasPrefix("status/") }.compactMap { $0.data["message"] as? String }.filter { $0.contains("model server") }
        #expect(reasons.count == 2 && reasons.allSatisfy { $0.contains("HTTP 500") && $0.contains("built-in caption") }, "\(reasons)")
        #expect(server.requests.count == 4, "one retry each")
    }

    @Test func withoutAServerThePipelineRunsAsBeforeAndSaysSo() throws {
        let (folder, clip, policy) = try setUp("none")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let run = try Tool.run(bin, ["run", try pipeline(folder, clip: clip, policy: policy, endpoint: ""), "--output", folder], check: false)
        #expect(run.status == 0, "\(run.stderr)")
        let all = try messages(folder + "/out.jsonl")
        #expect(all.filter { $0.topic.hasPrefix("captions/") }.count == 2)
        #expect(all.contains { ($0.data["message"] as? String)?.contains("no model server configured") == true })
    }
}
