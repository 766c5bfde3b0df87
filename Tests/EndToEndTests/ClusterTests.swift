import Foundation
import SightlineNATS
import SightlineTestSupport
import Testing

/// The batch work queue on a real nats-server (JetStream, loopback): workers killed with
/// SIGKILL mid-item, the server restarted mid-batch, items that fail, and a server that wants
/// a token. Every file must end with exactly one complete output, the done journal must list
/// each submitted item once, and nothing may be left on the queue.
@Suite(.serialized) struct ClusterTests {
    let bin = sightlineBinary()

    /// A batch pipeline cheap enough for many items: shots and one JSONL file per input.
    func pipeline(in folder: String) throws -> String {
        let path = folder + "/cluster.yaml"
        try """
        pipeline: cluster-test
        defaults: {policy: block, capacity: 8}
        nodes:
          files: {type: files, url: videos/}
          stats: {type: frame_stats}
          shots: {type: shots}
          results: {type: jsonl, dir: .}
        edges:
          - files -> stats
          - stats -> shots
          - shots -> results
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `count` distinct short clips (each its own content hash).
    func clips(_ count: Int, in folder: String, seconds: Int = 6) throws -> String {
        let videos = folder + "/videos"
        try FileManager.default.createDirectory(atPath: videos, withIntermediateDirectories: true)
        for index in 0..<count {
            try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=duration=\(seconds):size=320x240:rate=25",
                                    "-metadata", "title=clip \(index)", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50",
                                    videos + String(format: "/clip%02d.mp4", index)])
        }
        return videos
    }

    func temporaryFolder(_ name: String) throws -> String {
        let folder = NSTemporaryDirectory() + "sightline-cluster-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    func status(_ server: NATSServer, pipeline: String, extra: [String] = []) throws -> [String: Any] {
        let result = try Tool.run(bin, ["cluster", "status", "--nats", server.url, "--pipeline", pipeline, "--json"] + extra)
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }

    func worker(_ server: NATSServer, pipeline: String, output: String, id: String, extra: [String] = []) throws -> LineStreamingProcess {
        try LineStreamingProcess(bin, ["worker", "--nats", server.url, "--pipeline", pipeline, "--output", output, "--id", id,
                                       "--ack-wait", "2", "--idle-exit", "8", "--events"] + extra)
    }

    /// Every submitted item has one complete output folder, the done journal has exactly
    /// those keys, the queue is empty and nothing was dead-lettered.
    func expectExactlyOnce(keys: Set<String>, output: String, server: NATSServer, pipeline: String, workers: [LineStreamingProcess]) throws {
        let folders = Set(try FileManager.default.contentsOfDirectory(atPath: output).filter { !$0.hasPrefix(".") })
        #expect(folders == keys, "output folders \(folders.count) vs submitted \(keys.count)")
        var lineCounts = Set<Int>()
        for key in keys {
            let folder = output + "/" + key
            let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/item.json"))) as? [String: Any])
            #expect(manifest["key"] as? String == key)
            let name = try #require(manifest["name"] as? String)
            let lines = try String(contentsOfFile: folder + "/\(name).jsonl", encoding: .utf8).split(separator: "\n")
            for line in lines { #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "a torn line in \(key)") }
            lineCounts.insert(lines.count)
        }
        #expect(lineCounts.count == 1 && (lineCounts.first ?? 0) > 0, "every clip is alike, so every output has as many records: \(lineCounts)")
        let staging = (try? FileManager.default.contentsOfDirectory(atPath: output + "/.staging")) ?? []
        #expect(staging.isEmpty, "stagings left: \(staging)")
        let state = try status(server, pipeline: pipeline)
        #expect(state["done"] as? Int == keys.count)
        #expect(state["work_stream_messages"] as? Int == 0)
        #expect(state["dead_letters"] as? Int == 0)
        let queue = (state["queues"] as? [[String: Any]])?.first
        #expect(queue?["queued"] as? Int == 0 && queue?["in_flight"] as? Int == 0, "\(String(describing: queue))")
        // One commit per key over all workers: nothing was processed to completion twice.
        let commits = workers.flatMap(\.events).filter { $0["event"] as? String == "finished" && $0["committed"] as? Bool == true }
        let committedKeys = commits.compactMap { $0["key"] as? String }
        #expect(Set(committedKeys).count == committedKeys.count)
    }

    func submit(_ server: NATSServer, pipeline: String, videos: String) throws -> Set<String> {
        let result = try Tool.run(bin, ["submit", "--nats", server.url, "--pipeline", pipeline, videos, "--json"])
        let items = result.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(items.allSatisfy { $0["state"] as? String == "queued" })
        return Set(items.compactMap { $0["key"] as? String })
    }

    @Test func aWorkerKilledMidItemLosesNothingAndDuplicatesNothing() throws {
        let server = try NATSServer()
        defer { server.stop() }
        let folder = try temporaryFolder("kill")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let videos = try clips(20, in: folder)
        let pipeline = try pipeline(in: folder)
        let output = folder + "/out"
        let workers = try (1...3).map { try worker(server, pipeline: pipeline, output: output, id: "w\($0)") }
        defer { workers.forEach { $0.kill() } }
        let keys = try submit(server, pipeline: pipeline, videos: videos)
        #expect(keys.count == 20)
        // SIGKILL worker 2 while it holds an item (its staging folder exists).
        let victim = workers[1]
        let deadline = Date().addingTimeInterval(60)
        var killedMidItem = false
        while Date() < deadline {
            let staging = (try? FileManager.default.contentsOfDirectory(atPath: output + "/.staging")) ?? []
            if staging.contains(where: { $0.hasSuffix(".w2") }) {
                victim.signal(SIGKILL)
                killedMidItem = true
                break
            }
            Thread.sleep(forTimeInterval: 0.002)
        }
        #expect(killedMidItem, "worker 2 never held an item")
        for worker in [workers[0], workers[2]] { #expect(worker.waitForExit(timeout: 180) == 0, "\(worker.errorOutput.suffix(800))") }
        try expectExactlyOnce(keys: keys, output: output, server: server, pipeline: pipeline, workers: workers)
        // The killed item was redelivered and finished by another worker.
        let redelivered = workers.flatMap(\.events).filter { $0["event"] as? String == "started" && ($0["delivery"] as? Int ?? 1) > 1 }
        #expect(!redelivered.isEmpty)
    }

    @Test func aBatchCompletesAcrossANATSServerRestart() throws {
        let server = try NATSServer()
        defer { server.stop() }
        let folder = try temporaryFolder("restart")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let videos = try clips(8, in: folder)
        let pipeline = try pipeline(in: folder)
        let output = folder + "/out"
        let workers = try (1...2).map { try worker(server, pipeline: pipeline, output: output, id: "r\($0)") }
        defer { workers.forEach { $0.kill() } }
        let keys = try submit(server, pipeline: pipeline, videos: videos)
        // Once the first item is done, the server goes away for 2 s and comes back.
        #expect(workers[0].waitFor(timeout: 60) { events in events.contains { $0["event"] as? String == "finished" } }
                || workers[1].waitFor(timeout: 1) { events in events.contains { $0["event"] as? String == "finished" } })
        try server.restart(after: 2)
        for worker in workers { #expect(worker.waitForExit(timeout: 180) == 0, "\(worker.errorOutput.suffix(800))") }
        try expectExactlyOnce(keys: keys, output: output, server: server, pipeline: pipeline, workers: workers)
    }

    @Test func aFileThatFailsIsDeadLetteredWithItsErrorAfterItsDeliveries() throws {
        let server = try NATSServer()
        defer { server.stop() }
        let folder = try temporaryFolder("dead")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let videos = try clips(1, in: folder)
        try Data(repeating: 0x42, count: 4096).write(to: URL(fileURLWithPath: videos + "/broken.mp4"))
        let pipeline = try pipeline(in: folder)
        let output = folder + "/out"
        _ = try submit(server, pipeline: pipeline, videos: videos)
        let worker = try worker(server, pipeline: pipeline, output: output, id: "d1", extra: ["--max-deliveries", "2"])
        defer { worker.kill() }
        #expect(worker.waitForExit(timeout: 120) == 0, "\(worker.errorOutput.suffix(800))")
        let events = worker.events
        #expect(events.filter { $0["event"] as? String == "retrying" && $0["name"] as? String == "broken.mp4" }.count == 1)
        #expect(events.filter { $0["event"] as? String == "dead_letter" && $0["name"] as? String == "broken.mp4" }.count == 1)
        let state = try status(server, pipeline: pipeline)
        #expect(state["done"] as? Int == 1)
        #expect(state["dead_letters"] as? Int == 1)
        #expect(state["work_stream_messages"] as? Int == 0)
        let letter = try #require((state["recent_dead_letters"] as? [[String: Any]])?.first)
        #expect(letter["name"] as? String == "broken.mp4" && letter["deliveries"] as? Int == 2)
        #expect((letter["error"] as? String ?? "").contains("broken.mp4"), "\(letter)")
        #expect(!FileManager.default.fileExists(atPath: output + "/" + "broken"), "no output for a failed item")
    }

    @Test func aServerThatWantsATokenGetsOneFromAFileAndAClearErrorOtherwise() throws {
        let server = try NATSServer(extra: ["--auth", "s3cret-token"])
        defer { server.stop() }
        let folder = try temporaryFolder("token")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let pipeline = try pipeline(in: folder)
        let refused = try Tool.run(bin, ["cluster", "status", "--nats", server.url], check: false)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("NATS") && refused.stderr.lowercased().contains("author"), "\(refused.stderr)")
        try "s3cret-token\n".write(toFile: folder + "/token", atomically: true, encoding: .utf8)
        let allowed = try Tool.run(bin, ["cluster", "status", "--nats", server.url, "--nats-token-file", folder + "/token", "--pipeline", pipeline], check: false)
        #expect(allowed.status == 0, "\(allowed.stderr)")
        #expect(allowed.stdout.contains("work queue: 0 item(s)"))
    }
}

/// Live cameras across workers on a real nats-server: a camera held through a lease moves to
/// the other worker within 15 s when its holder is killed, with the unattended time reported.
@Suite(.serialized) struct CameraLeaseTests {
    let bin = sightlineBinary()

    @Test func aKilledWorkersCameraResumesOnAnotherWithinFifteenSeconds() throws {
        let server = try NATSServer()
        defer { server.stop() }
        let folder = NSTemporaryDirectory() + "sightline-cameras-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let port = freePort(udp: true)
        let sender = try startLiveSender(url: "udp://127.0.0.1:\(port)?pkt_size=1316", seconds: 120)
        defer { stopProcess(sender) }
        let pipeline = folder + "/camera.yaml"
        try """
        pipeline: camera-test
        defaults: {policy: drop-oldest, capacity: 4}
        nodes:
          cam: {type: source, url: "udp://127.0.0.1:1", fps: 2, size: 64x48, read_timeout: 3, reconnect_attempts: 1000, reconnect_max_delay: 1}
          stats: {type: frame_stats}
          results: {type: nats, url: "\(server.url)", stream: RESULTS}
        edges:
          - cam -> stats
          - stats -> results
        """.write(toFile: pipeline, atomically: true, encoding: .utf8)
        try Tool.run(bin, ["cluster", "add-source", "--nats", server.url, "door", "udp://127.0.0.1:\(port)"])
        let workers = try (1...2).map {
            try LineStreamingProcess(bin, ["worker", "--cameras", "--nats", server.url, "--pipeline", pipeline, "--id", "c\($0)", "--events"])
        }
        defer { workers.forEach { $0.kill() } }
        func acquired(_ worker: LineStreamingProcess) -> [[String: Any]] { worker.events.filter { $0["event"] as? String == "acquired" } }
        let deadline = Date().addingTimeInterval(20)
        var holder: LineStreamingProcess?
        while Date() < deadline, holder == nil {
            holder = workers.first { !acquired($0).isEmpty }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let first = try #require(holder, "no worker took the camera: \(workers.map { $0.errorOutput.suffix(300) })")
        let other = workers.first { $0 !== first }!
        let status = try Tool.run(bin, ["cluster", "status", "--nats", server.url, "--json"])
        let cameras = (try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])?["cameras"] as? [[String: Any]]
        #expect(cameras?.first?["holder"] as? String == (first === workers[0] ? "c1" : "c2"))
        // Let it run, then kill its holder.
        Thread.sleep(forTimeInterval: 3)
        first.signal(SIGKILL)
        let killed = Date()
        #expect(other.waitFor(timeout: 15) { events in events.contains { $0["event"] as? String == "acquired" } },
                "the camera did not move within 15 s: \(other.errorOutput.suffix(600))")
        let moved = Date().timeIntervalSince(killed)
        let event = try #require(acquired(other).first)
        let gap = event["gap_seconds"] as? Double ?? -1
        #expect(gap > 0 && gap < 15, "\(event)")
        #expect(moved < 15)
        print("camera failover: taken over \(String(format: "%.1f", moved)) s after the kill, reported gap \(String(format: "%.1f", gap)) s")
        // Frames flow again from the new holder: stats records published after the takeover.
        let connection = try NATSConnection(NATSSettings(urls: [server.url]))
        let js = connection.jetStream
        let after = Date().timeIntervalSince1970
        let resumed = try (0..<40).contains { _ in
            Thread.sleep(forTimeInterval: 0.5)
            return try js.streamState("RESULTS").messages > 0 && latestWallClock(js) > after
        }
        #expect(resumed, "no results from the camera after the takeover")
        // The move is on the bus too, with the gap.
        let moves = try replayStatuses(js).filter { $0.contains("camera_moved") }
        #expect(moves.contains { $0.contains("\"gap_seconds\"") && $0.contains("\"source\":\"door\"") }, "\(moves)")
        // Removing the camera stops it.
        try Tool.run(bin, ["cluster", "remove-source", "--nats", server.url, "door"])
        #expect(other.waitFor(timeout: 5) { events in events.contains { $0["event"] as? String == "released" && $0["reason"] as? String == "removed" } })
    }

    /// Every status message in RESULTS, as text.
    func replayStatuses(_ js: JetStream) throws -> [String] {
        let state = try js.streamState("RESULTS")
        guard state.lastSequence >= state.firstSequence, state.firstSequence > 0 else { return [] }
        return try (state.firstSequence...state.lastSequence).compactMap { sequence in
            let text = String(decoding: try js.message(stream: "RESULTS", sequence: sequence), as: UTF8.self)
            return text.contains("\"kind\":\"status\"") ? text : nil
        }
    }

    /// The wall clock of the newest message in RESULTS.
    func latestWallClock(_ js: JetStream) throws -> Double {
        let state = try js.streamState("RESULTS")
        let data = try js.message(stream: "RESULTS", sequence: state.lastSequence)
        // The header is JSON at the start of the data; wallclock sits in it.
        let text = String(decoding: data, as: UTF8.self)
        guard let range = text.range(of: "\"wallclock\":") else { return 0 }
        let rest = text[range.upperBound...].prefix { "0123456789.".contains($0) }
        return Double(rest) ?? 0
    }
}
