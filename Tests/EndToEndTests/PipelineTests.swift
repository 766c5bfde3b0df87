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

    @Test func aCurveProtectedPipelineReachesOnlyKeyHolders() throws {
        // Keys from the CLI, a pipeline that encrypts and admits one client folder, and three
        // pyzmq subscribers: with the key (everything), without CURVE, with a stranger's key.
        let keys = Fixtures.shared.directory + "/curve-\(getpid())"
        try? FileManager.default.removeItem(atPath: keys)
        for name in ["server", "viewer", "stranger"] { _ = try Tool.run(bin, ["keys", "generate", "\(keys)/\(name)"]) }
        try FileManager.default.createDirectory(atPath: keys + "/clients", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: keys + "/viewer.key", toPath: keys + "/clients/viewer.key")
        let again = try Tool.run(bin, ["keys", "generate", "\(keys)/server"], check: false)
        #expect(again.status != 0 && again.stderr.contains("already exists"))

        let port = freePort()
        let pipeline = try writePipeline("curve", """
        nodes:
          cam1: {type: synthetic, count: 200, size: 32x32}
          stats: {type: frame_stats, histogram_bins: 4}
          out: {type: publish, endpoint: "pub+bind:tcp://127.0.0.1:\(port)", wait_subscribers: 1, block_timeout: 60,
                curve_secret_key: "\(keys)/server.key_secret", curve_clients: "\(keys)/clients"}
        edges:
          - cam1 -> stats
          - stats -> out
        """)
        let endpoint = "tcp://127.0.0.1:\(port)"
        let viewer = try LineStreamingProcess("python3", [pythonSubscriber, endpoint, "--until-end", "--idle-timeout", "30",
                                                          "--curve-key", keys + "/viewer.key_secret", "--curve-server-key", keys + "/server.key"])
        let plain = try LineStreamingProcess("python3", [pythonSubscriber, endpoint, "--idle-timeout", "6"])
        let stranger = try LineStreamingProcess("python3", [pythonSubscriber, endpoint, "--idle-timeout", "6",
                                                            "--curve-key", keys + "/stranger.key_secret", "--curve-server-key", keys + "/server.key"])
        defer { viewer.kill(); plain.kill(); stranger.kill() }
        let run = try Tool.run(bin, ["run", pipeline, "--quiet"])
        #expect(!run.stderr.contains("warning"), "a loopback endpoint draws no warning: \(run.stderr)")
        #expect(viewer.waitForExit(timeout: 30) == 0, "\(viewer.errorOutput)")
        #expect(plain.waitForExit(timeout: 30) == 0)
        #expect(stranger.waitForExit(timeout: 30) == 0)
        let stats = viewer.output.filter { $0.hasPrefix("{\"topic\":\"stats/cam1/\"") }
        #expect(stats.count == 200, "the key holder receives everything")
        #expect(viewer.output.last?.contains("end_of_stream") == true)
        #expect(plain.output.isEmpty, "no key, nothing: \(plain.output.prefix(2))")
        #expect(stranger.output.isEmpty, "a key not in curve_clients, nothing")

        // The Swift subscriber takes the same files; a public certificate is not a key pair.
        let wrong = try Tool.run(bin, ["subscribe", endpoint, "--curve-key", keys + "/viewer.key", "--curve-server-key", keys + "/server.key"], check: false)
        #expect(wrong.status != 0 && wrong.stderr.contains("secret"))
        // Half a CURVE setting is an error at validation, and an exposed address a warning.
        let half = try writePipeline("curve-half", """
        nodes:
          cam1: {type: synthetic, count: 2, size: 32x32}
          out: {type: publish, endpoint: "pub+bind:tcp://0.0.0.0:\(freePort())", curve_secret_key: "\(keys)/server.key_secret"}
        edges: [cam1 -> out]
        """)
        let refused = try Tool.run(bin, ["run", half, "--quiet"], check: false)
        #expect(refused.status != 0 && refused.stderr.contains("curve_clients"), "\(refused.stderr)")
        let exposed = try writePipeline("exposed", """
        nodes:
          cam1: {type: synthetic, count: 2, size: 32x32}
          out: {type: publish, endpoint: "pub+bind:tcp://0.0.0.0:\(freePort())", linger_ms: 0}
        edges: [cam1 -> out]
        """)
        let warned = try Tool.run(bin, ["run", exposed, "--quiet"], check: false)
        #expect(warned.stderr.contains("warning: publish endpoint 'tcp://0.0.0.0"), "\(warned.stderr)")
        let quiet = try Tool.run(bin, ["run", exposed, "--quiet", "--set", "out.insecure_ok=true"], check: false)
        #expect(!quiet.stderr.contains("warning"))
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

    @Test func aSlowSubscriberLosesOnlyItsOwnMessagesAndMemoryStaysBounded() throws {
        // A live pipeline (when_full: drop) at 3,000 frames/s with two subscribers: one reads
        // everything, one sleeps 1 ms per message (a third of the rate). With XPUB_NODROP the slow one made every
        // send fail and the healthy one lost three quarters; now only the slow one loses, and
        // it sees its losses as gaps in seq.
        let port = freePort()
        let frames = 15_000
        let pipeline = try writePipeline("slow", """
        heartbeat: 0.5
        nodes:
          cam1: {type: synthetic, count: \(frames), size: 32x32, fps: 3000, realtime: true}
          stats: {type: frame_stats, histogram_bins: 256}
          out: {type: publish, endpoint: "pub+bind:tcp://127.0.0.1:\(port)", wait_subscribers: 2, hwm: 1000, when_full: drop, linger_ms: 30000}
        edges:
          - {from: cam1, to: stats, policy: block, capacity: 8}
          - stats -> out
        """)
        // A small receive buffer on the slow side, so its loss happens in ZeroMQ's queue rather
        // than vanishing into kernel buffers (Linux grows them to 32 MB); a long linger lets it
        // read what was queued after its gaps before the publisher exits.
        let healthy = try LineStreamingProcess("python3", [pythonSubscriber, "tcp://127.0.0.1:\(port)", "--until-end", "--idle-timeout", "30"])
        let slow = try LineStreamingProcess("python3", ["-c", """
        import sys, time, zmq
        s = zmq.Context().socket(zmq.SUB); s.setsockopt(zmq.RCVHWM, 20); s.setsockopt(zmq.RCVBUF, 4096); s.setsockopt(zmq.SUBSCRIBE, b"")
        s.connect("tcp://127.0.0.1:\(port)")
        s.RCVTIMEO = 5000
        while True:
            try:
                parts = s.recv_multipart()
            except zmq.Again:
                break
            sys.stdout.write(parts[1].decode() + "\\n"); sys.stdout.flush()
            time.sleep(0.001)
        """])
        defer { slow.kill(); healthy.kill() }
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
        #expect(healthy.waitForExit(timeout: 60) == 0, "\(healthy.errorOutput)")
        let healthyHeaders = healthy.output.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .compactMap { $0["header"] as? [String: Any] }
        let healthyStats = healthyHeaders.filter { ($0["kind"] as? String) == "stats" }.count
        #expect(healthyStats == frames, "the healthy subscriber gets every message (\(healthyStats) of \(frames))")
        let end = (healthyHeaders.last?["data"] as? [String: Any]) ?? [:]
        #expect(end["event"] as? String == "end_of_stream")
        #expect(end["dropped_at_sink"] as? Int == 0 && end["dropped_in_graph"] as? Int == 0, "\(end)")

        #expect(slow.waitForExit(timeout: 120) == 0)
        let slowHeaders = slow.output.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let seqs = slowHeaders.filter { ($0["kind"] as? String) == "stats" }.compactMap { $0["seq"] as? Int }
        let gaps = zip(seqs, seqs.dropFirst()).reduce(0) { $0 + $1.1 - $1.0 - 1 }
        #expect(seqs.count < frames && !seqs.isEmpty, "the slow subscriber fell behind (\(seqs.count) of \(frames))")
        #expect(gaps > 0 && seqs == seqs.sorted(), "its losses show as gaps in seq")
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

    @Test(arguments: [SIGTERM, SIGINT])
    func aSignalStopsASourceBlockedInARead(signal: Int32) throws {
        // A FIFO nobody writes to: FFmpeg blocks in open(2), where no interrupt callback runs.
        // It ignored SIGTERM for over 30 s; now the run ends within 2 s of the signal, with
        // end-of-stream published for the stuck source and the error saying why.
        let fifo = Fixtures.shared.directory + "/blocked-\(getpid())-\(signal).fifo"
        unlink(fifo)
        #expect(mkfifo(fifo, 0o600) == 0)
        defer { unlink(fifo) }
        let port = freePort()
        let pipeline = try writePipeline("fifo", """
        nodes:
          cam1: {type: source, url: "\(fifo)", live: "off"}
          stats: {type: frame_stats}
          out: {type: publish, endpoint: "pub+bind:tcp://127.0.0.1:\(port)", wait_subscribers: 1}
        edges:
          - cam1 -> stats
          - stats -> out
        """)
        let subscriber = try LineStreamingProcess(bin, ["subscribe", "tcp://127.0.0.1:\(port)", "--until-end", "--idle-timeout", "20"])
        defer { subscriber.kill() }
        let runner = try LineStreamingProcess(bin, ["run", pipeline, "--quiet", "--drain-timeout", "5"])
        defer { runner.kill() }
        Thread.sleep(forTimeInterval: 1.5)
        #expect(runner.isRunning, "the source is blocked, not finished")
        runner.signal(signal)
        let stoppedAt = Date()
        let status = runner.waitForExit(timeout: 20)
        let seconds = Date().timeIntervalSince(stoppedAt)
        #expect(seconds < 2.5, "stopped \(seconds) s after the signal")
        #expect(status != nil)
        #expect(subscriber.waitForExit(timeout: 10) == 0)
        let messages = parse(subscriber.output)
        let end = try #require(messages.last)
        #expect(event(end) == "end_of_stream")
        #expect(messages.contains { (header($0)["data"] as? [String: Any])?["message"].map { "\($0)".contains("blocked") } == true },
                "an error says the input was blocked: \(subscriber.output)")
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
