import ArgumentParser
import Foundation
import SightlineCluster
import SightlineNATS
import Synchronization

/// `sightline bench cluster`: the work queue on a real nats-server on loopback. Measures the
/// queue's overhead per item, the time from submit to a worker starting, throughput with 1, 2
/// and 3 workers on this box, and repeats the SIGKILL-mid-item check for lost or duplicated
/// outputs.
struct BenchClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Work queue on a local nats-server: per-item overhead, submit-to-start latency, throughput by worker count, kill rounds.")

    @Option(help: "Clips per throughput and kill round.")
    var items: Int = 20

    @Option(help: "Seconds per synthetic clip (320x240, 25 fps).")
    var clipSeconds: Int = 6

    @Option(help: "Items submitted one at a time to an idle worker, for the submit-to-start latency.")
    var latencySamples: Int = 20

    @Option(help: "Rounds of: 3 workers, SIGKILL one mid-item, check every output is there exactly once.")
    var killRounds: Int = 3

    @Option(help: "Rounds of: 2 camera workers, one live UDP camera, SIGKILL its holder, time until the other runs it.")
    var failoverRounds: Int = 3

    @Option(help: "Camera lease TTL for the failover rounds (seconds).")
    var leaseTTL: Double = 10

    @Option(help: "Worker counts to measure throughput with.")
    var workers: [Int] = [1, 2, 3]

    func run() throws {
        let server = try findExecutable("nats-server")
        let root = NSTemporaryDirectory() + "sightline-bench-cluster-\(getpid())"
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root + "/videos", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let ffmpeg = try findExecutable("ffmpeg")
        for index in 0..<items {
            _ = try runTool(ffmpeg, ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=duration=\(clipSeconds):size=320x240:rate=25",
                                     "-metadata", "title=clip \(index)", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50",
                                     root + String(format: "/videos/clip%02d.mp4", index)])
        }
        let pipeline = root + "/cluster.yaml"
        try """
        pipeline: bench-cluster
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
        """.write(toFile: pipeline, atomically: true, encoding: .utf8)
        let cpu = cpuName()
        print("bench cluster: \(items) clips of \(clipSeconds) s 320x240, pipeline frame_stats+shots+jsonl, nats-server on loopback, \(ProcessInfo.processInfo.activeProcessorCount) cores, \(cpu)")

        // Submit-to-start: one idle worker, items published one at a time.
        do {
            let nats = try LocalNATSServer(executable: server, root: root + "/nats-latency")
            defer { nats.stop() }
            let worker = try BenchWorker(nats: nats.url, pipeline: pipeline, output: root + "/out-latency", id: "lat")
            defer { worker.kill() }
            let connection = try NATSConnection(NATSSettings(urls: [nats.url]))
            let js = connection.jetStream
            try QueueLayout().ensure(js)
            let hash = try ClusterPipelineArguments.parse(["--pipeline", pipeline]).load().resultsHash
            var publish: [Double] = [], startDelays: [Double] = []
            let paths = try FileManager.default.contentsOfDirectory(atPath: root + "/videos").sorted().map { root + "/videos/" + $0 }
            // Wait until the worker pulls (its consumer exists).
            Thread.sleep(forTimeInterval: 1.5)
            for index in 0..<latencySamples {
                let path = paths[index % paths.count]
                let digest = try sha256(ofFile: path)
                // A fresh key per sample (the file's hash with a sample suffix) so none is "already done".
                let item = WorkItem(path: path, name: "sample\(index)", sha256: String(digest.dropLast(4)) + String(format: "%04x", index),
                                    pipelineHash: hash, submitted: Date().timeIntervalSince1970)
                let before = monotonicSeconds()
                try js.publish(subject: QueueLayout.workSubject(pipelineHash: hash), data: item.encoded(), messageID: item.key)
                publish.append(monotonicSeconds() - before)
                guard worker.waitFor(timeout: 30, { $0.contains { $0["event"] as? String == "started" && $0["name"] as? String == item.name } }) else {
                    throw ValidationError("the worker did not start sample \(index): \(worker.errorOutput.suffix(400))")
                }
                if let event = worker.events.first(where: { $0["event"] as? String == "started" && $0["name"] as? String == item.name }),
                   let queued = event["queued_seconds"] as? Double { startDelays.append(queued) }
                // Let it finish (it fails: the sha256 does not match, and dead-letters at once).
                _ = worker.waitFor(timeout: 30) { $0.contains { ["dead_letter", "finished"].contains($0["event"] as? String ?? "") && $0["name"] as? String == item.name } }
            }
            print(String(format: "submit (JetStream publish + ack): p50 %.2f ms, p95 %.2f ms", percentile(publish, 0.5) * 1000, percentile(publish, 0.95) * 1000))
            print(String(format: "submit to start on an idle worker: p50 %.1f ms, p95 %.1f ms (target ≤ 50 ms)",
                         percentile(startDelays, 0.5) * 1000, percentile(startDelays, 0.95) * 1000))
        }

        // Throughput by worker count, and the queue's own share of each item.
        for count in workers {
            let nats = try LocalNATSServer(executable: server, root: root + "/nats-\(count)")
            defer { nats.stop() }
            let output = root + "/out-\(count)"
            let pool = try (1...count).map { try BenchWorker(nats: nats.url, pipeline: pipeline, output: output, id: "t\(count)x\($0)") }
            defer { pool.forEach { $0.kill() } }
            Thread.sleep(forTimeInterval: 1)
            let started = monotonicSeconds()
            _ = try runTool(ownExecutable(), ["submit", "--nats", nats.url, "--pipeline", pipeline, root + "/videos"])
            let deadline = Date().addingTimeInterval(600)
            while Date() < deadline, pool.reduce(0, { $0 + $1.events.filter { $0["event"] as? String == "finished" }.count }) < items {
                Thread.sleep(forTimeInterval: 0.02)
            }
            let wall = monotonicSeconds() - started
            let finished = pool.flatMap(\.events).filter { $0["event"] as? String == "finished" }
            let overhead = finished.compactMap { event -> Double? in
                guard let total = event["seconds"] as? Double, let pipeline = event["pipeline_seconds"] as? Double else { return nil }
                return total - pipeline
            }
            let pipelineTime = finished.compactMap { $0["pipeline_seconds"] as? Double }
            print(String(format: "%d worker(s): %d items in %.2f s, %.2f items/s; per item: pipeline %.0f ms, queue work around it (hash, stage, commit, journal) %.1f ms (%.1f %%)",
                         count, finished.count, wall, Double(finished.count) / wall, mean(pipelineTime) * 1000, mean(overhead) * 1000,
                         100 * mean(overhead) / max(mean(pipelineTime) + mean(overhead), 1e-9)))
        }

        // Kill rounds.
        var lost = 0, duplicated = 0
        for round in 0..<killRounds {
            let nats = try LocalNATSServer(executable: server, root: root + "/nats-kill\(round)")
            defer { nats.stop() }
            let output = root + "/out-kill\(round)"
            let pool = try (1...3).map { try BenchWorker(nats: nats.url, pipeline: pipeline, output: output, id: "k\(round)x\($0)", extra: ["--ack-wait", "2", "--idle-exit", "6"]) }
            defer { pool.forEach { $0.kill() } }
            _ = try runTool(ownExecutable(), ["submit", "--nats", nats.url, "--pipeline", pipeline, root + "/videos"])
            let victim = pool[round % 3]
            let deadline = Date().addingTimeInterval(120)
            var killed = false
            while Date() < deadline {
                let staging = (try? FileManager.default.contentsOfDirectory(atPath: output + "/.staging")) ?? []
                if staging.contains(where: { $0.hasSuffix("." + victim.id) }) {
                    victim.kill()
                    killed = true
                    break
                }
                Thread.sleep(forTimeInterval: 0.002)
            }
            for worker in pool where worker !== victim { _ = worker.waitForExit(timeout: 300) }
            let folders = (try? FileManager.default.contentsOfDirectory(atPath: output))?.filter { !$0.hasPrefix(".") } ?? []
            let complete = folders.filter { FileManager.default.fileExists(atPath: output + "/" + $0 + "/item.json") }
            let commits = pool.flatMap(\.events).filter { $0["event"] as? String == "finished" && $0["committed"] as? Bool == true }
            let roundLost = items - complete.count
            let roundDuplicated = commits.count - Set(commits.compactMap { $0["key"] as? String }).count
            lost += max(roundLost, 0)
            duplicated += roundDuplicated
            let connection = try NATSConnection(NATSSettings(urls: [nats.url]))
            let left = try connection.jetStream.streamState(QueueLayout.workStream).messages
            let dead = try connection.jetStream.streamState(QueueLayout.deadStream).messages
            let journal = try QueueLayout().doneBucket(connection.jetStream).keys().count
            print("kill round \(round + 1): \(killed ? "killed \(victim.id) mid-item" : "NO KILL (the worker never held an item)"); \(complete.count)/\(items) outputs, \(roundDuplicated) duplicated commits, journal \(journal), queue left \(left), dead letters \(dead)")
        }
        if killRounds > 0 { print("kill rounds: \(killRounds), lost \(lost), duplicated \(duplicated)") }

        // Camera failover: time from SIGKILL of the holder to the other worker running the camera.
        var failovers: [Double] = []
        for round in 0..<failoverRounds {
            let nats = try LocalNATSServer(executable: server, root: root + "/nats-failover\(round)")
            defer { nats.stop() }
            let port = try freeLoopbackPort()
            let sender = Process()
            sender.executableURL = URL(fileURLWithPath: ffmpeg)
            sender.arguments = ["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "120",
                                "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25", "-pix_fmt", "yuv420p",
                                "-f", "mpegts", "udp://127.0.0.1:\(port)?pkt_size=1316"]
            sender.standardOutput = FileHandle.nullDevice
            sender.standardError = FileHandle.nullDevice
            try sender.run()
            defer { sender.terminate(); sender.waitUntilExit() }
            let cameraPipeline = root + "/camera.yaml"
            try """
            pipeline: bench-camera
            defaults: {policy: drop-oldest, capacity: 4}
            nodes:
              cam: {type: source, url: "udp://127.0.0.1:1", fps: 2, size: 64x48, read_timeout: 3, reconnect_attempts: 1000, reconnect_max_delay: 1}
              stats: {type: frame_stats}
              out: {type: null}
            edges:
              - cam -> stats
              - stats -> out
            """.write(toFile: cameraPipeline, atomically: true, encoding: .utf8)
            _ = try runTool(ownExecutable(), ["cluster", "add-source", "--nats", nats.url, "cam1", "udp://127.0.0.1:\(port)"])
            let pool = try (1...2).map { index in
                try BenchWorker(nats: nats.url, pipeline: cameraPipeline, output: root, id: "f\(round)x\(index)",
                                extra: ["--cameras", "--lease-ttl", "\(leaseTTL)"], batch: false)
            }
            defer { pool.forEach { $0.kill() } }
            let acquired = { (worker: BenchWorker) in worker.events.contains { $0["event"] as? String == "acquired" } }
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline, !pool.contains(where: acquired) { Thread.sleep(forTimeInterval: 0.01) }
            guard let holder = pool.first(where: acquired), let other = pool.first(where: { $0 !== holder }) else {
                print("failover round \(round + 1): no worker took the camera")
                continue
            }
            // Kill at a random point of the lease period.
            Thread.sleep(forTimeInterval: 2 + Double.random(in: 0..<(leaseTTL / 3)))
            holder.kill()
            let killed = monotonicSeconds()
            if other.waitFor(timeout: leaseTTL + 20, { events in events.contains { $0["event"] as? String == "acquired" } }) {
                failovers.append(monotonicSeconds() - killed)
                let gap = other.events.first { $0["event"] as? String == "acquired" }?["gap_seconds"] as? Double ?? .nan
                print(String(format: "failover round %d: camera running on the other worker %.1f s after SIGKILL (reported unattended %.1f s)",
                             round + 1, failovers.last ?? .nan, gap))
            } else {
                print("failover round \(round + 1): NOT taken over within \(leaseTTL + 20) s")
            }
        }
        if failoverRounds > 0 {
            print(String(format: "camera failover (lease TTL %.0f s): %d/%d rounds, max %.1f s, mean %.1f s (target ≤ 15 s)", leaseTTL,
                         failovers.count, failoverRounds, failovers.max() ?? .nan, mean(failovers)))
        }
    }

    func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
    }

    func mean(_ values: [Double]) -> Double { values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count) }
}

/// nats-server with JetStream in a folder of its own, on a free loopback port.
final class LocalNATSServer {
    let process = Process()
    let url: String

    init(executable: String, root: String) throws {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let port = try freeLoopbackPort()
        url = "nats://127.0.0.1:\(port)"
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-js", "-a", "127.0.0.1", "-p", "\(port)", "-sd", root]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if (try? NATSConnection(NATSSettings(urls: [url]))) != nil { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        stop()
        throw ValidationError("nats-server did not start on \(url)")
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }
}

/// A `sightline worker --events` child whose JSON lines are collected as they come.
final class BenchWorker: @unchecked Sendable {
    let id: String
    private let process = Process()
    private let lines = Mutex<[Data]>([])
    private let errors = Mutex<String>("")

    init(nats: String, pipeline: String, output: String, id: String, extra: [String] = [], batch: Bool = true) throws {
        self.id = id
        process.executableURL = URL(fileURLWithPath: ownExecutable())
        process.arguments = ["worker", "--nats", nats, "--pipeline", pipeline, "--id", id, "--events"] + (batch ? ["--output", output] : []) + extra
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outHandle = out.fileHandleForReading, errHandle = err.fileHandleForReading
        Thread.detachNewThread { [self] in
            var buffer = Data()
            while true {
                let chunk = outHandle.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = buffer[buffer.startIndex..<newline]
                    buffer.removeSubrange(buffer.startIndex...newline)
                    let copy = Data(line)
                    lines.withLock { $0.append(copy) }
                }
            }
        }
        Thread.detachNewThread { [self] in
            while true {
                let chunk = errHandle.availableData
                if chunk.isEmpty { break }
                errors.withLock { $0 += String(decoding: chunk, as: UTF8.self) }
            }
        }
    }

    var events: [[String: Any]] {
        lines.withLock { $0 }.compactMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
    }
    var errorOutput: String { errors.withLock { $0 } }

    func waitFor(timeout: Double, _ condition: ([[String: Any]]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition(events) { return true }
            Thread.sleep(forTimeInterval: 0.001)
        }
        return condition(events)
    }

    func waitForExit(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        return process.isRunning ? nil : process.terminationStatus
    }

    func kill() {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// A loopback TCP port that was free a moment ago.
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw ValidationError("socket: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard ok else { throw ValidationError("no free loopback port: \(String(cString: strerror(errno)))") }
    return Int(UInt16(bigEndian: address.sin_port))
}
