import Foundation
import SightlineNATS
import SightlineTestSupport
import Testing

/// One pipeline split between an edge and a core over a real nats-server: the edge runs the
/// nodes marked `at: edge` and exits; the core, started afterwards, takes everything from the
/// JetStream stream and rebuilds the frames from the changed tiles; its per-frame results
/// match a run of the whole pipeline on one machine. An edge-only source sends no pixels.
@Suite(.serialized) struct EdgeCoreTests {
    let bin = sightlineBinary()

    /// A still background with a square crossing it, 4 s at 10 fps: a fixed camera.
    func clip(_ folder: String) throws -> String {
        let path = folder + "/still.mp4"
        _ = try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi",
                                    "-i", "testsrc2=size=320x240:rate=10:duration=4,crop=320:240,boxblur=0",
                                    "-f", "lavfi", "-i", "color=c=0x305070:size=320x240:rate=10:duration=4",
                                    "-filter_complex", "[1][0]overlay=x='if(lt(t,0.5),-200,-260+t*60)':y=60:shortest=1,format=yuv420p",
                                    "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", path])
        return path
    }

    func pipeline(_ folder: String, url: String, clip: String, privacy: String, redact: Bool = false) throws -> String {
        let path = folder + "/split.yaml"
        // With `redact`, faces are found and hidden at the edge before the link.
        let redaction = redact ? "\n  faces: {type: faces, at: edge}\n  hide: {type: redact, at: edge}" : ""
        let chain = redact ? "  - stats -> faces\n  - faces -> hide\n  - hide -> hash" : "  - stats -> hash"
        try """
        pipeline: edge-test
        defaults: {policy: block, capacity: 8}
        link: {url: "\(url)", whole_every: 0}
        nodes:
          cam: {type: source, url: "\(clip)", fps: 5, at: edge, privacy: \(privacy)}
          stats: {type: frame_stats, at: edge}\(redaction)
          hash: {type: phash}
          out: {type: jsonl, path: out.jsonl}
        edges:
          - cam -> stats
        \(chain)
          - hash -> out
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// KIND -> frame index -> data, from a jsonl sink's file.
    func results(_ path: String) throws -> [String: [Int: [String: Any]]] {
        var out: [String: [Int: [String: Any]]] = [:]
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
            guard let message = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let header = message["header"] as? [String: Any], let kind = header["kind"] as? String,
                  let data = header["data"] as? [String: Any], let index = data["frame_index"] as? Int else { continue }
            out[kind, default: [:]][index] = data
        }
        return out
    }

    func hamming(_ a: String, _ b: String) -> Int {
        guard let x = UInt64(a, radix: 16), let y = UInt64(b, radix: 16) else { return 64 }
        return (x ^ y).nonzeroBitCount
    }

    /// Every message the link's stream holds, read by a consumer of its own.
    func linkMessages(_ url: String) throws -> [Data] {
        try readWholeStream(url, stream: "SIGHTLINE_LINK", durable: "inspect", filter: "sightline_link.>").map(\.data)
    }

    func containsJPEG(_ data: Data) -> Bool {
        data.withUnsafeBytes { bytes in
            guard bytes.count >= 3 else { return false }
            for i in 0..<(bytes.count - 2) where bytes[i] == 0xff && bytes[i + 1] == 0xd8 && bytes[i + 2] == 0xff { return true }
            return false
        }
    }

    @Test func theCoreRebuildsTheEdgesFramesAndItsResultsMatchAWholeRun() throws {
        let server = try NATSServer()
        defer { server.stop() }
        let folder = NSTemporaryDirectory() + "sightline-edge-core-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder + "/whole", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = try pipeline(folder, url: server.url, clip: try clip(folder), privacy: "share")

        let whole = try Tool.run(bin, ["run", file, "--output", folder + "/whole"], check: false)
        #expect(whole.status == 0, "\(whole.stderr)")
        // The edge runs and ends before the core starts: the stream holds its messages.
        let edge = try Tool.run(bin, ["run", file, "--role", "edge", "--output", folder + "/edge"], check: false)
        #expect(edge.status == 0, "\(edge.stderr)")
        #expect(edge.stderr.contains("changed tiles"), "\(edge.stderr)")
        let core = try Tool.run(bin, ["run", file, "--role", "core", "--output", folder + "/core"], check: false)
        #expect(core.status == 0, "\(core.stderr)")

        let expected = try results(folder + "/whole/out.jsonl"), got = try results(folder + "/core/out.jsonl")
        let wholeHashes = expected["phash"] ?? [:], coreHashes = got["phash"] ?? [:]
        #expect(wholeHashes.count == 20 && Set(coreHashes.keys) == Set(wholeHashes.keys))
        // The edge's own results crossed as they were.
        #expect(Set((got["stats"] ?? [:]).keys) == Set((expected["stats"] ?? [:]).keys))
        // The rebuilt frames hash as the originals do (JPEG may move a bit or two).
        let close = wholeHashes.filter { index, data in
            guard let a = data["hash"] as? String, let b = coreHashes[index]?["hash"] as? String else { return false }
            return hamming(a, b) <= 4
        }
        #expect(close.count >= wholeHashes.count - 1, "\(close.count) of \(wholeHashes.count) frames hash alike")

        // Most frames crossed as changed tiles or not at all, not as whole pictures.
        let messages = try linkMessages(server.url)
        let frames = messages.compactMap { data -> [String: Any]? in
            guard data.count > 4 else { return nil }
            let length = Int(data[0]) << 24 | Int(data[1]) << 16 | Int(data[2]) << 8 | Int(data[3])
            let header = (try? JSONSerialization.jsonObject(with: data.subdata(in: 4..<(4 + length)))) as? [String: Any]
            return header?["frame"] as? [String: Any]
        }
        #expect(frames.count == 20)
        let whole0 = frames.filter { $0["transfer"] as? String == "full" }.count
        #expect(whole0 == 1, "whole pictures: \(whole0)")
    }

    @Test func anEdgeOnlySourceSendsItsResultsButNoPixels() throws {
        let server = try NATSServer()
        defer { server.stop() }
        let folder = NSTemporaryDirectory() + "sightline-edge-only-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = try pipeline(folder, url: server.url, clip: try clip(folder), privacy: "edge-only")

        let edge = try Tool.run(bin, ["run", file, "--role", "edge", "--output", folder + "/edge"], check: false)
        #expect(edge.status == 0, "\(edge.stderr)")
        #expect(edge.stderr.contains("no redact node comes before 'stats'"), "\(edge.stderr)")
        #expect(edge.stderr.contains("20 frames withheld"), "\(edge.stderr)")
        let core = try Tool.run(bin, ["run", file, "--role", "core", "--output", folder + "/core"], check: false)
        #expect(core.status == 0, "\(core.stderr)")
        let got = try results(folder + "/core/out.jsonl")
        #expect(got["stats"]?.count == 20, "the edge's results cross")
        #expect(got["phash"] == nil, "no frame reached the core")
        let messages = try linkMessages(server.url)
        #expect(!messages.isEmpty && !messages.contains { containsJPEG($0) }, "a picture left the edge")
    }

    @Test func anEdgeOnlySourcesFramesCrossOnceARedactNodeHidFaces() throws {
        let server = try NATSServer()
        defer { server.stop() }
        let folder = NSTemporaryDirectory() + "sightline-edge-redact-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = try pipeline(folder, url: server.url, clip: try clip(folder), privacy: "edge-only", redact: true)
        let edge = try Tool.run(bin, ["run", file, "--role", "edge", "--output", folder + "/edge"], check: false)
        #expect(edge.status == 0, "\(edge.stderr)")
        #expect(edge.stderr.contains("only as redacted by a redact node") && edge.stderr.contains("0 frames withheld"), "\(edge.stderr)")
        let core = try Tool.run(bin, ["run", file, "--role", "core", "--output", folder + "/core"], check: false)
        #expect(core.status == 0, "\(core.stderr)")
        #expect(try results(folder + "/core/out.jsonl")["phash"]?.count == 20, "the redacted frames reach the core")
    }
}
