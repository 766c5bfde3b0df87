import ArgumentParser
import Foundation
import SightlineBus
import SightlineCore
import SightlineMedia

/// `sightline bench density`: how many live 720p30 cameras one box holds. Each step runs the
/// live pipeline's nodes (Pipelines/live.yaml: shots, labels, nsfw, ocr, captions, moderation,
/// publish; 2 sampled frames/s per camera) with N cameras, each its own ffmpeg pushing the 720p30
/// bench clip over UDP in real time, and a subscriber measuring frame-to-message latency. N grows
/// until p99 passes 1 s or a frame is dropped; the last N that held is the answer.
struct BenchDensityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "density",
        abstract: "Live 720p30 cameras per box: raises the camera count until frame-to-message p99 > 1 s or frames drop; prints RSS per camera (target ≥ 8).",
        discussion: "The cameras show the bundled sample (a moving cartoon), so motion gating computes nearly every frame there (--no-gate: every frame); a fixed camera looking at a quiet scene costs far less.")

    @Option(help: "Cameras in the first step.") var start: Int = 1
    @Option(help: "Cameras at most.") var max: Int = 16
    @Option(help: "Seconds per step (the first 15 are left out as warm-up).") var seconds: Double = 60
    @Flag(inversion: .prefixedNo, help: "Gate the model nodes by motion (a regions node, gate: true), as Pipelines/live.yaml does.") var gate = true

    @Option(help: "Threads for the ocr node (live.yaml: 2).") var ocrThreads = 2
    @Option(help: "The ocr node reads text at most once per this many seconds per camera (its `interval`; 0: every sampled frame).")
    var ocrInterval: Double = 0
    @Option(help: "Frames per camera each edge after the cameras holds (live.yaml, one camera: 2).") var sharedCapacity = 2
    @Option(help: "The cameras' decode mode (live.yaml: sampled, which skips the frames after the last sampled one before the next keyframe; all: decode every frame).")
    var mode: DecodeMode = .sampled

    static let warmUp = 15.0

    func run() throws {
        guard ocrInterval >= 0, ocrInterval.isFinite else { throw ValidationError("--ocr-interval must be 0 or more seconds") }
        guard start >= 1, max >= start, seconds > Self.warmUp + 5 else {
            throw ValidationError("need 1 ≤ --start ≤ --max and --seconds > \(Int(Self.warmUp) + 5)")
        }
        print("sightline bench density — live 720p30 cameras over UDP (a keyframe a second), decode mode \(mode.rawValue), live.yaml's nodes\(gate ? " gated by motion" : ""), 2 sampled frames/s each\(ocrInterval > 0 ? ", text read at most every \(ocrInterval) s" : ""), \(Int(seconds)) s a step (first \(Int(Self.warmUp)) s warm-up)")
        print(pad("cameras", 9) + pad("messages", 10) + pad("p50 ms", 9) + pad("p99 ms", 9) + pad("dropped", 9) + pad("warm-up", 9) + pad("RSS MB", 9) + pad("MB/camera", 11)
              + pad("cores", 7) + pad("CPU ms/cam-s", 14) + "holds")
        var held = 0
        for cameras in start...max {
            let step = try runStep(cameras: cameras)
            let holds = step.p99 <= 1.0 && step.dropped == 0 && step.messages > 0
            print(pad("\(cameras)", 9) + pad("\(step.messages)", 10) + pad(String(format: "%.0f", step.p50 * 1000), 9)
                  + pad(String(format: "%.0f", step.p99 * 1000), 9) + pad("\(step.dropped)", 9) + pad("\(step.droppedInWarmUp)", 9) + pad(String(format: "%.0f", step.rss), 9)
                  + pad(String(format: "%.0f", step.rss / Double(cameras)), 11) + pad(String(format: "%.2f", step.cores), 7)
                  + pad(String(format: "%.0f", step.cores * 1000 / Double(cameras)), 14) + (holds ? "yes" : "no"))
            guard holds else { break }
            held = cameras
        }
        print("cameras held with p99 ≤ 1 s and no drops: \(held) (target ≥ 8)")
    }

    struct Step {
        var messages = 0
        var p50 = Double.infinity
        var p99 = Double.infinity
        /// Frames dropped after the warm-up (the verdict), and during it (start-up: weights load and
        /// the first calls pack them while the cameras already send; printed, not judged).
        var dropped = 0
        var droppedInWarmUp = 0
        var rss = 0.0
        /// The pipeline's CPU time after the warm-up over that wall time (cores busy); the
        /// cameras' ffmpeg senders not included.
        var cores = 0.0
    }

    func pipeline(cameras: Int, ports: [Int], busPort: Int) -> String {
        let gated = gate ? ", gate: true" : ""
        var yaml = """
        pipeline: density
        heartbeat: 2
        defaults: {policy: drop-oldest, capacity: 2}
        nodes:

        """
        for (i, port) in ports.enumerated() {
            yaml += "  cam\(i + 1): {type: source, url: \"udp://127.0.0.1:\(port)\", fps: 2, read_timeout: 5, mode: \(mode.rawValue)}\n"
        }
        let policy = repositoryFile("Pipelines/moderation-policy.yaml")
        yaml += """
          shots: {type: shots, window: 4}
        \(gate ? "  regions: {type: regions}\n" : "")  labels: {type: labels, top: 5, batch: 2, max_wait_ms: 40\(gated)}
          nsfw: {type: nsfw, batch: 2, max_wait_ms: 40\(gated)}
          ocr: {type: ocr, threads: \(ocrThreads)\(gated)\(ocrInterval > 0 ? ", interval: \(ocrInterval)" : "")}
          captions: {type: captions, policy: "\(policy)"}
          moderation: {type: moderation, policy: "\(policy)"}
          out: {type: publish, endpoint: "pub+bind:tcp://127.0.0.1:\(busPort)", when_full: drop, hwm: 10000}
        edges:

        """
        for i in 1...cameras { yaml += "  - cam\(i) -> shots\n" }
        // The edges after `shots` carry every camera's frames: each holds 2 frames per camera,
        // the second of buffering live.yaml's capacity 2 gives its one camera at 2 frames/s
        // (capacity 2 shared by N cameras dropped frames in any 250 ms stall at 4 cameras).
        let chain = (gate ? ["shots", "regions"] : ["shots"]) + ["labels", "nsfw", "ocr", "captions", "moderation", "out"]
        for (from, to) in zip(chain, chain.dropFirst()) {
            yaml += "  - {from: \(from), to: \(to), capacity: \(sharedCapacity * cameras)}\n"
        }
        return yaml
    }

    func runStep(cameras: Int) throws -> Step {
        let clip = try BenchLiveCommand.liveClip()
        let ports = (0..<cameras).map { _ in Int.random(in: 20000..<30000) }
        let busPort = try freeLoopbackPort()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("sightline-density-\(getpid()).yaml").path
        try pipeline(cameras: cameras, ports: ports, busPort: busPort).write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let subscriber = try BusSubscriber(endpoint: try BusEndpoint(parsing: "tcp://127.0.0.1:\(busPort)", defaultRole: .sub))
        let graph = Process()
        graph.executableURL = URL(fileURLWithPath: ownExecutable())
        graph.arguments = ["run", file, "--quiet", "--progress", "off"]
        // Its errors are kept, to say why a step that never delivered a message failed.
        let errors = file + ".stderr"
        _ = FileManager.default.createFile(atPath: errors, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: errors) }
        graph.standardError = FileHandle(forWritingAtPath: errors) ?? FileHandle.nullDevice
        try graph.run()
        var senders: [Process] = []
        defer {
            for sender in senders where sender.isRunning { sender.terminate() }
            if graph.isRunning { kill(graph.processIdentifier, SIGINT) }
            graph.waitUntilExit()
        }
        for port in ports {
            let sender = Process()
            sender.executableURL = URL(fileURLWithPath: try findExecutable("ffmpeg"))
            sender.arguments = ["-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", clip, "-t", "\(Int(seconds) + 10)",
                                "-c", "copy", "-f", "mpegts", "udp://127.0.0.1:\(port)?pkt_size=1316"]
            try sender.run()
            senders.append(sender)
        }
        let started = monotonicSeconds()
        var latencies: [Double] = []
        var dropped: [String: Int] = [:]
        var droppedByWarmUp: [String: Int]?
        var step = Step()
        var peak = 0.0
        var lastSample = 0.0
        var cpuAtWarmUp: (cpu: Double, at: Double)?
        while monotonicSeconds() - started < seconds {
            let elapsed = monotonicSeconds() - started
            if elapsed >= Self.warmUp && droppedByWarmUp == nil {
                droppedByWarmUp = dropped
                cpuAtWarmUp = BenchLiveCommand.cpuSeconds(pid: graph.processIdentifier).map { ($0, monotonicSeconds()) }
            }
            if let message = try subscriber.receive(timeout: 0.5), let header = message.headerJSON {
                let kind = header["kind"]?.stringValue ?? "?"
                if kind == "status" {
                    // Heartbeats count drops per source since the start: the last one holds the totals.
                    if header["data"]?["event"]?.stringValue == "heartbeat", case .object(let sources)? = header["data"]?["sources"] {
                        for (source, counters) in sources {
                            dropped[source] = Int((counters["dropped_in_graph"]?.intValue ?? 0) + (counters["dropped_at_sink"]?.intValue ?? 0))
                        }
                    }
                } else if elapsed >= Self.warmUp, let ingest = header["ingest_wallclock"]?.doubleValue {
                    latencies.append(Date().timeIntervalSince1970 - ingest)
                }
            }
            if elapsed - lastSample >= 2 {
                lastSample = elapsed
                peak = Swift.max(peak, BenchLiveCommand.residentMegabytes(pid: graph.processIdentifier))
            }
        }
        if let start = cpuAtWarmUp, let now = BenchLiveCommand.cpuSeconds(pid: graph.processIdentifier) {
            step.cores = (now - start.cpu) / Swift.max(monotonicSeconds() - start.at, 1e-3)
        }
        if !graph.isRunning {
            let said = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
            throw ValidationError("the pipeline of \(cameras) cameras stopped early (exit \(graph.terminationStatus)): \(said.split(separator: "\n").suffix(5).joined(separator: "\n"))")
        }
        latencies.sort()
        step.messages = latencies.count
        step.p50 = BenchLiveCommand.percentile(latencies, 50) ?? .infinity
        step.p99 = BenchLiveCommand.percentile(latencies, 99) ?? .infinity
        let total = dropped.values.reduce(0, +)
        step.droppedInWarmUp = (droppedByWarmUp ?? dropped).values.reduce(0, +)
        step.dropped = total - step.droppedInWarmUp
        step.rss = peak
        return step
    }
}
