import Foundation
import Testing
import SightlineTestSupport

/// `sightline run` end to end: real decoder, real ZeroMQ on loopback, real subscribers in
/// separate processes (pyzmq's Samples/subscriber.py and `sightline subscribe`).
@Suite(.serialized) struct PipelineTests {
    let bin = sightlineBinary()
    static let repoRoot = repositoryRoot
    var pythonSubscriber: String { Self.repoRoot + "/Samples/subscriber.py" }

    private func writePipeline(_ name: String, _ yaml: String) throws -> String {
        let path = Fixtures.shared.directory + "/\(name)-\(getpid()).yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func parse(_ lines: [String]) -> [[String: Any]] {
        lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    private func header(_ line: [String: Any]) -> [String: Any] { line["header"] as? [String: Any] ?? [:] }
    private func event(_ line: [String: Any]) -> String? { (header(line)["data"] as? [String: Any])?["event"] as? String }

    @Test func everyMessageArrivesInOrderAtBothSubscribers() throws {
        let clip = try Fixtures.shared.clip(Fixtures.small)  // 90 frames
        let port = freePort()
        let jsonl = Fixtures.shared.directory + "/e2e-\(getpid()).jsonl"
        let pipeline = try writePipeline("e2e", """
        pipeline: e2e
        nodes:
          cam1: {type: source, url: "\(clip)", size: 64x48}
          stats: {type: frame_stats, histogram_bins: 8}
          hash: {type: phash}
          out: {type: publish, endpoint: "pub+bind:tcp://127.0.0.1:\(port)", wait_subscribers: 2, wait_timeout: 30, block_timeout: 120}
          file: {type: jsonl, path: "\(jsonl)", vectors: true}
        edges:
          - cam1 -> stats
          - stats -> hash
          - hash -> out, file
        """)
        // block_timeout: a subscriber slowed down by the other tests sharing the cores is
        // waited for rather than dropped (the default 5 s then drop-and-count is what a live
        // pipeline wants; this test checks that nothing is lost).
        let python = try LineStreamingProcess("python3", [pythonSubscriber, "tcp://127.0.0.1:\(port)", "--vectors", "--until-end", "--idle-timeout", "30"])
        let swift = try LineStreamingProcess(bin, ["subscribe", "tcp://127.0.0.1:\(port)", "--vectors", "--until-end", "--idle-timeout", "30"])
        defer { python.kill(); swift.kill() }
        let run = try Tool.run(bin, ["run", pipeline, "--quiet"])
        #expect(run.stderr.contains("90 frames"))
        #expect(python.waitForExit(timeout: 30) == 0, "\(python.errorOutput)")
        #expect(swift.waitForExit(timeout: 30) == 0)

        let lines = python.output
        let swiftLines = swift.output
        #expect(lines.count == swiftLines.count && lines.count > 180)
        let mismatch = zip(lines, swiftLines).first { $0 != $1 }
        #expect(mismatch == nil, "pyzmq and the Swift subscriber print the same lines; first difference: \(String(describing: mismatch))")
        let messages = parse(lines)
        #expect(messages.count == lines.count)
        var seqByTopic: [String: [Int]] = [:]
        var ptsByTopic: [String: [Double]] = [:]
        for m in messages {
            let topic = m["topic"] as? String ?? ""
            seqByTopic[topic, default: []].append(header(m)["seq"] as? Int ?? -1)
            if let pts = header(m)["pts_start"] as? Double { ptsByTopic[topic, default: []].append(pts) }
        }
        #expect(seqByTopic["stats/cam1/"] == Array(0..<90))
        #expect(seqByTopic["phash/cam1/"] == Array(0..<90))
        for (topic, seqs) in seqByTopic { #expect(seqs == Array(0..<seqs.count), "gap in \(topic)") }
        for (topic, pts) in ptsByTopic { #expect(pts == pts.sorted(), "\(topic) timestamps go back") }
        #expect(event(messages.last ?? [:]) == "end_of_stream")
        #expect(messages.first.map(event) == "started")
        let vector = messages.first { ($0["topic"] as? String) == "stats/cam1/" }?["vector"] as? [Double]
        #expect(vector?.count == 8)
        #expect(abs((vector ?? []).reduce(0, +) - 1) < 1e-5)

        // The JSONL file holds the same records.
        let fileLines = try String(contentsOfFile: jsonl, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(parse(fileLines).count == fileLines.count)
        #expect(fileLines.filter { $0.hasPrefix("{\"topic\":\"stats/cam1/\"") }.count == 90)
        #expect(event(parse(fileLines).last ?? [:]) == "end_of_stream")
    }

    @Test func sourcesSharingAPrefixAreRoutedApart() throws {
        let port = freePort()
        let pipeline = try writePipeline("prefix", """
        nodes:
          cam1: {type: synthetic, count: 40}
          cam10: {type: synthetic, count: 60}
          stats: {type: frame_stats}
          out: {type: publish, endpoint: "pub+bind:tcp://127.0.0.1:\(port)", wait_subscribers: 2}
        edges:
          - cam1 -> stats
          - cam10 -> stats
          - stats -> out
        """)
        let only1 = try LineStreamingProcess(bin, ["subscribe", "tcp://127.0.0.1:\(port)", "--topic", "stats/cam1/", "--topic", "status/cam1/", "--until-end", "--idle-timeout", "20"])
        let only10 = try LineStreamingProcess("python3", [pythonSubscriber, "tcp://127.0.0.1:\(port)", "--topic", "stats/cam10/", "--topic", "status/cam10/", "--until-end", "--idle-timeout", "20"])
        defer { only1.kill(); only10.kill() }
        try Tool.run(bin, ["run", pipeline, "--quiet"])
        #expect(only1.waitForExit(timeout: 30) == 0)
        #expect(only10.waitForExit(timeout: 30) == 0)
        let a = parse(only1.output), b = parse(only10.output)
        #expect(a.filter { ($0["topic"] as? String) == "stats/cam1/" }.count == 40)
        #expect(a.allSatisfy { (header($0)["source"] as? String) == "cam1" })
        #expect(b.filter { ($0["topic"] as? String) == "stats/cam10/" }.count == 60)
        #expect(b.allSatisfy { (header($0)["source"] as? String) == "cam10" })
    }

    @Test func slowSubscriberUnderDropPolicyIsCountedAndMemoryStaysBounded() throws {
        let port = freePort()
        let pipeline = try writePipeline("slow", """
        heartbeat: 0.5
        nodes:
          cam1: {type: synthetic, count: 30000, size: 32x32}
          stats: {type: frame_stats, histogram_bins: 256}
          out: {type: publish, endpoint: "pub+bind:tcp://127.0.0.1:\(port)", wait_subscribers: 1, hwm: 20, when_full: drop}
        edges:
          - {from: cam1, to: stats, policy: drop-oldest, capacity: 8}
          - stats -> out
        """)
        // A subscriber that sleeps 20 ms per message cannot keep up with ~thousands/s.
        let slow = try LineStreamingProcess("python3", ["-c", """
        import sys, time, zmq
        s = zmq.Context().socket(zmq.SUB); s.setsockopt(zmq.RCVHWM, 20); s.setsockopt(zmq.SUBSCRIBE, b"")
        s.connect("tcp://127.0.0.1:\(port)")
        while True:
            parts = s.recv_multipart()
            sys.stdout.write(parts[1].decode() + "\\n"); sys.stdout.flush()
            if b'"end_of_stream"' in parts[1]: break
            time.sleep(0.02)
        """])
        defer { slow.kill() }
        let runner = try LineStreamingProcess(bin, ["run", pipeline, "--quiet"])
        defer { runner.kill() }
        var peakKB = 0
        while runner.isRunning {
            if let status = try? String(contentsOfFile: "/proc/\(runner.pid)/status", encoding: .utf8),
               let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
               let kb = Int(line.split(separator: " ").dropFirst().first ?? "") {
                peakKB = max(peakKB, kb)
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(runner.waitForExit(timeout: 60) == 0, "\(runner.errorOutput)")
        #expect(slow.waitForExit(timeout: 60) == 0)
        let headers = slow.output.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let end = try #require(headers.last)
        let data = end["data"] as? [String: Any] ?? [:]
        #expect(data["event"] as? String == "end_of_stream")
        let dropped = (data["dropped_at_sink"] as? Int ?? 0) + (data["dropped_in_graph"] as? Int ?? 0)
        #expect(dropped > 20000, "drops are counted: \(data)")
        let delivered = headers.filter { ($0["kind"] as? String) == "stats" }.count
        #expect(delivered < 30000 - 20000)
        #expect(runner.errorOutput.contains("dropped"))
        #expect(peakKB > 0 && peakKB < 300_000, "peak RSS \(peakKB) kB")
    }

    @Test func sigtermDrainsAndPublishesEndOfStream() throws {
        let port = freePort()
        let jsonl = Fixtures.shared.directory + "/sigterm-\(getpid()).jsonl"
        let pipeline = try writePipeline("sigterm", """
        nodes:
          cam1: {type: synthetic, count: 100000000, size: 64x48}
          stats: {type: frame_stats}
          hash: {type: phash}
          out: {type: publish, endpoint: "pub+bind:tcp://127.0.0.1:\(port)", wait_subscribers: 1}
          file: {type: jsonl, path: "\(jsonl)"}
        edges:
          - cam1 -> stats
          - stats -> hash
          - hash -> out, file
        """)
        let subscriber = try LineStreamingProcess(bin, ["subscribe", "tcp://127.0.0.1:\(port)", "--until-end", "--idle-timeout", "20"])
        defer { subscriber.kill() }
        let runner = try LineStreamingProcess(bin, ["run", pipeline, "--quiet", "--drain-timeout", "5"])
        defer { runner.kill() }
        #expect(subscriber.waitFor(timeout: 20) { $0.count > 200 })
        runner.signal(SIGTERM)
        let stoppedAt = Date()
        #expect(runner.waitForExit(timeout: 20) == 0, "\(runner.errorOutput)")
        #expect(Date().timeIntervalSince(stoppedAt) < 12)
        #expect(subscriber.waitForExit(timeout: 20) == 0)
        let last = try #require(parse(subscriber.output).last)
        #expect(event(last) == "end_of_stream")

        let lines = try String(contentsOfFile: jsonl, encoding: .utf8).split(separator: "\n").map(String.init)
        let parsed = parse(lines)
        #expect(parsed.count == lines.count, "every line of the JSONL file parses")
        #expect(event(parsed.last ?? [:]) == "end_of_stream")
        let seqs = parsed.filter { ($0["topic"] as? String) == "stats/cam1/" }.compactMap { header($0)["seq"] as? Int }
        #expect(seqs == Array(0..<seqs.count))
        #expect(seqs.count > 100)
    }

    @Test func validateReportsPositionsAndRunRefusesBadFiles() throws {
        let pipeline = try writePipeline("bad", """
        nodes:
          cam1: {type: source, url: a.mp4, fps: fast}
          out: {type: jsonl}
        edges:
          - cam1 -> out
          - out -> nowhere
        """)
        let result = try Tool.run(bin, ["validate", pipeline], check: false)
        #expect(result.status == 1)
        let lines = result.stderr.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("\(pipeline):2:41: error: option 'fps'") })
        #expect(lines.contains { $0.hasPrefix("\(pipeline):3:3: error: node 'out' (jsonl) needs option 'path' or 'dir'") })
        #expect(lines.contains { $0.hasPrefix("\(pipeline):6:5: error: dangling edge out -> nowhere") })
        #expect(result.stderr.contains("hint:"))
        let run = try Tool.run(bin, ["run", pipeline], check: false)
        #expect(run.status == 1)
        let ok = try Tool.run(bin, ["validate", Self.repoRoot + "/Pipelines/stats.yaml"])
        #expect(ok.stdout.contains("ok"))
    }
}
