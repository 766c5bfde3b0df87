import Foundation
import SightlineNATS
import SightlineTestSupport
import Testing

/// The `nats` sink against a real nats-server: results land on PREFIX.KIND.SOURCE subjects in
/// a JetStream stream a late subscriber replays; with the server away the pipeline does not
/// wait, and what the bounded buffer drops is counted and reported once the server is back.
@Suite(.serialized) struct NATSSinkTests {
    let bin = sightlineBinary()

    func pipeline(_ folder: String, url: String, count: Int, realtime: Bool, buffer: Int) throws -> String {
        let path = folder + "/nats-sink.yaml"
        try """
        pipeline: nats-sink-test
        defaults: {policy: block, capacity: 8}
        nodes:
          cam: {type: synthetic, count: \(count), fps: 50, realtime: \(realtime)}
          stats: {type: frame_stats}
          results: {type: nats, url: "\(url)", stream: RESULTS, buffer: \(buffer), drain_timeout: 2}
        edges:
          - cam -> stats
          - stats -> results
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Every message in the RESULTS stream: subject, parsed header, payload size.
    func replay(_ url: String) throws -> [(subject: String, header: [String: Any], payload: Int)] {
        try readWholeStream(url, stream: "RESULTS", durable: "replay", filter: "sightline.>").map { message in
            let length = Int(message.header("Sightline-Header-Length") ?? "") ?? -1
            #expect(length > 0 && length <= message.data.count)
            let header = (try? JSONSerialization.jsonObject(with: message.data.prefix(max(length, 0)))) as? [String: Any] ?? [:]
            return (message.subject, header, message.data.count - max(length, 0))
        }
    }

    func kind(_ header: [String: Any]) -> String? { header["kind"] as? String }

    @Test func resultsLandInAStreamALateSubscriberReplaysFromTheStart() throws {
        let server = try NATSServer()
        defer { server.stop() }
        let folder = NSTemporaryDirectory() + "sightline-nats-sink-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let run = try Tool.run(bin, ["run", try pipeline(folder, url: server.url, count: 60, realtime: false, buffer: 10_000)], check: false)
        #expect(run.status == 0, "\(run.stderr)")
        // Subscribed only now, after the run: the stream kept everything.
        let messages = try replay(server.url)
        let stats = messages.filter { kind($0.header) == "stats" }
        #expect(stats.count == 60, "\(messages.prefix(3).map(\.subject))")
        #expect(stats.allSatisfy { $0.subject == "sightline.stats.cam" })
        #expect(stats.compactMap { $0.header["seq"] as? Int } == Array(stats.indices.map { $0 + (stats.first?.header["seq"] as? Int ?? 0) }))
        let ends = messages.filter { kind($0.header) == "status" && (($0.header["data"] as? [String: Any])?["event"] as? String) == "end_of_stream" }
        #expect(ends.count == 1 && ends.first?.subject == "sightline.status.cam")
    }

    @Test func withTheServerAwayThePipelineRunsOnAndTheDropsAreCountedAndReported() throws {
        let port = freePort()
        let url = "nats://127.0.0.1:\(port)"
        let folder = NSTemporaryDirectory() + "sightline-nats-away-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // 200 frames at 50 fps: 4 s of records; the server only appears after 1.5 s and the
        // buffer holds 30, so some of the first ~75 records must be dropped.
        let path = try pipeline(folder, url: url, count: 200, realtime: true, buffer: 30)
        let started = Date()
        let run = try LineStreamingProcess(bin, ["run", path])
        defer { run.kill() }
        Thread.sleep(forTimeInterval: 1.5)
        let server = try NATSServerOnPort(port: port)
        defer { server.stop() }
        let status = run.waitForExit(timeout: 30)
        #expect(status == 0, "\(run.errorOutput)")
        #expect(Date().timeIntervalSince(started) < 12, "the pipeline waited for NATS")
        let messages = try replay(url)
        let stats = messages.filter { kind($0.header) == "stats" }.count
        let reports = messages.filter { (($0.header["data"] as? [String: Any])?["event"] as? String) == "nats_dropped" }
        let reported = reports.compactMap { ($0.header["data"] as? [String: Any])?["dropped"] as? Int }.reduce(0, +)
        #expect(reported > 0, "\(messages.count) messages, none a drop report")
        #expect(stats < 200 && stats > 0)
        // Nothing lost silently: each stats record arrived or was counted (the drop count may
        // also include status messages).
        #expect(stats + reported >= 200, "\(stats) arrived + \(reported) reported dropped")
        // The run's summary counts the same drops.
        let summary = run.errorOutput.split(separator: "\n").first { $0.contains("pipeline 'nats-sink-test'") } ?? ""
        #expect(summary.contains("\(reported) dropped"), "\(summary)")
    }
}

/// nats-server on a given port (a test that starts its client before its server).
final class NATSServerOnPort {
    let process = Process()
    let store = NSTemporaryDirectory() + "sightline-nats-port-\(getpid())"

    init(port: Int) throws {
        process.executableURL = URL(fileURLWithPath: try Tool.path("nats-server"))
        process.arguments = ["-js", "-a", "127.0.0.1", "-p", "\(port)", "-sd", store]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: store)
    }
}
