import ArgumentParser
import Foundation
import SightlineBus
import SightlineCore

/// `sightline bench live`: Pipelines/live.yaml on a 720p30 stream that ffmpeg pushes over UDP
/// in real time; a subscriber measures frame-to-message latency (receive time − the frame's
/// ingest wall clock) and the pipeline process's memory is sampled as it runs.
struct BenchLiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "live",
        abstract: "Live 720p30 over UDP through Pipelines/live.yaml: frame-to-message latency p50/p99 and memory over time (targets: p50 ≤ 300 ms, p99 ≤ 1 s, flat memory).")

    @Option(help: "Seconds to run.") var duration: Double = 600
    @Option(help: "Seconds between progress lines.") var every: Double = 30

    func run() throws {
        FileHandle.standardError.write(Data())
        print("sightline bench live — 720p30 H.264 over UDP (real time), Pipelines/live.yaml (2 sampled frames/s), \(Int(duration)) s")
        print(pad("time s", 9) + pad("messages", 10) + pad("p50 ms", 9) + pad("p99 ms", 9) + pad("RSS MB", 9) + "dropped")
        var window: [Double] = []
        var messages = 0
        var rss: [(Double, Double)] = []
        var nextReport = every
        let result = try LiveStreamRun.run(pipeline: repositoryFile("Pipelines/live.yaml"), duration: duration,
            onMessage: { _, latency in
                messages += 1
                if let latency { window.append(latency) }
            },
            onTick: { elapsed, pid, dropped in
                guard elapsed >= nextReport else { return }
                nextReport += every
                let memory = Self.residentMegabytes(pid: pid)
                rss.append((elapsed, memory))
                window.sort()
                print(pad(String(format: "%.0f", elapsed), 9) + pad("\(messages)", 10)
                      + pad(Self.percentile(window, 50).map { String(format: "%.0f", $0 * 1000) } ?? "-", 9)
                      + pad(Self.percentile(window, 99).map { String(format: "%.0f", $0 * 1000) } ?? "-", 9)
                      + pad(String(format: "%.0f", memory), 9) + "\(dropped)")
                window.removeAll()
            })
        let latencies = result.latencies, dropped = result.dropped
        let all = latencies.filter { $0.key != "status" }.values.flatMap { $0 }.sorted()
        print("per kind (frame-to-message, whole run):")
        for (kind, values) in latencies.sorted(by: { $0.key < $1.key }) where kind != "status" {
            let sorted = values.sorted()
            print("  " + pad(kind, 12) + pad("\(sorted.count) msgs", 11) + String(format: "p50 %6.0f ms   p99 %6.0f ms",
                  (Self.percentile(sorted, 50) ?? 0) * 1000, (Self.percentile(sorted, 99) ?? 0) * 1000))
        }
        let p50 = Self.percentile(all, 50) ?? .infinity, p99 = Self.percentile(all, 99) ?? .infinity
        print(String(format: "all results: p50 %.0f ms (target ≤ 300), p99 %.0f ms (target ≤ 1000) — %@", p50 * 1000, p99 * 1000,
                     p50 <= 0.3 && p99 <= 1.0 ? "met" : "NOT met"))
        if let first = rss.first(where: { $0.0 >= 60 }) ?? rss.first, let last = rss.last {
            print(String(format: "memory: %.0f MB at %.0f s, %.0f MB at %.0f s (%+.1f%%), peak %.0f MB", first.1, first.0, last.1, last.0,
                         (last.1 - first.1) / max(first.1, 1) * 100, rss.map(\.1).max() ?? 0))
        }
        print("dropped frames (graph + sink): \(dropped)")
    }

    static func percentile(_ sorted: [Double], _ p: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p / 100).rounded()))]
    }

    static func residentMegabytes(pid: Int32) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = line.split(separator: " ").compactMap({ Double($0) }).first else { return 0 }
        return kb / 1024
    }

    /// A running process's CPU time so far (user + system, seconds), from /proc; nil once gone.
    static func cpuSeconds(pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return ticks > 0 ? (user + system) / ticks : nil
    }

    /// The bundled sample's first 5 s re-encoded at 1280×720, 30 fps, a keyframe a second and
    /// no B-frames, as cameras send (cached). Five whole seconds, so that a stream looping it
    /// keeps a keyframe a second across the seam (the whole 5.3 s sample left a 9-frame group
    /// there, which no camera sends).
    static func liveClip() throws -> String {
        try benchClip("live-720p30-5s.mp4", input: ["-t", "5", "-vf", "scale=1280:720,fps=30", "-g", "30", "-bf", "0"])
    }
}

/// One live run: ffmpeg pushes the 720p30 bench clip over UDP in real time into `sightline run
/// PIPELINE`, whose `out` node publishes on a loopback ZeroMQ port; a subscriber takes every
/// message and its frame-to-message latency (receive time − the frame's ingest wall clock).
enum LiveStreamRun {
    struct Result {
        /// Latencies in seconds by message kind (status included).
        var latencies: [String: [Double]]
        /// Frames dropped in the graph and at the sink, from the last heartbeat.
        var dropped: Int
    }

    /// - Parameters:
    ///   - settings: `NODE.OPTION=VALUE` overrides passed to the pipeline (`--set`).
    ///   - warmUp: seconds at the start (models loading, the first frames) left out of the latencies.
    ///   - onMessage: each message's header and latency (nil when it carries no ingest time).
    ///   - onTick: after each message, and at least every half second: seconds since the start,
    ///     the pipeline's pid, drops so far.
    static func run(pipeline: String, duration: Double, settings: [String] = [], warmUp: Double = 0,
                    onMessage: (_ header: JSONValue, _ latency: Double?) -> Void = { _, _ in },
                    onTick: (_ elapsed: Double, _ pid: Int32, _ dropped: Int) -> Void = { _, _, _ in }) throws -> Result {
        let clip = try BenchLiveCommand.liveClip()
        let udpPort = Int.random(in: 20000..<30000), busPort = try freeLoopbackPort()
        let udp = "udp://127.0.0.1:\(udpPort)"
        let subscriber = try BusSubscriber(endpoint: try BusEndpoint(parsing: "tcp://127.0.0.1:\(busPort)", defaultRole: .sub))
        let graph = Process()
        graph.executableURL = URL(fileURLWithPath: ownExecutable())
        graph.arguments = ["run", pipeline, "--input", udp, "--set", "out.endpoint=pub+bind:tcp://127.0.0.1:\(busPort)",
                           "--quiet", "--progress", "off"] + settings.flatMap { ["--set", $0] }
        graph.standardError = FileHandle.nullDevice
        try graph.run()
        let sender = Process()
        sender.executableURL = URL(fileURLWithPath: try findExecutable("ffmpeg"))
        sender.arguments = ["-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", clip, "-t", "\(Int(duration) + 10)",
                            "-c", "copy", "-f", "mpegts", udp + "?pkt_size=1316"]
        try sender.run()
        defer {
            if sender.isRunning { sender.terminate() }
            if graph.isRunning { kill(graph.processIdentifier, SIGINT) }
            graph.waitUntilExit()
        }
        let started = monotonicSeconds()
        var result = Result(latencies: [:], dropped: 0)
        while monotonicSeconds() - started < duration {
            if let message = try subscriber.receive(timeout: 0.5), let header = message.headerJSON {
                let kind = header["kind"]?.stringValue ?? "?"
                var latency: Double?
                if let ingest = header["ingest_wallclock"]?.doubleValue, monotonicSeconds() - started >= warmUp {
                    latency = Date().timeIntervalSince1970 - ingest
                    result.latencies[kind, default: []].append(latency ?? 0)
                }
                if kind == "status", header["data"]?["event"]?.stringValue == "heartbeat",
                   let sources = header["data"]?["sources"]?["cam"] {
                    result.dropped = Int((sources["dropped_in_graph"]?.intValue ?? 0) + (sources["dropped_at_sink"]?.intValue ?? 0))
                }
                onMessage(header, latency)
            }
            onTick(monotonicSeconds() - started, graph.processIdentifier, result.dropped)
        }
        return result
    }
}
