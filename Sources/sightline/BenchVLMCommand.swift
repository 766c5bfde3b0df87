import ArgumentParser
import Foundation
import SightlineCore
import SightlineGraph
import SightlineMedia
import SightlineModelServers
import SightlineNodes

/// `sightline bench vlm`: the `vlm_captions` node against a local OpenAI-compatible server
/// (a Python `http.server` that answers after a fixed delay, started here on loopback).
/// Measures (1) what the node adds per caption beyond the server's own time: picking and
/// encoding the frames, the request, the answer's parsing (target ≤ 5 ms); and (2) with the
/// server 10× slower than the frame interval, how long each frame waits in the node (frames
/// must not wait: target, p99 unchanged against the node without a server).
struct BenchVLMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vlm",
        abstract: "vlm_captions against a local slow server: overhead per caption beyond the server's time (target ≤ 5 ms), frame latency through the node with the server 10× slower than the frames.")

    @Option(help: "Captions measured.")
    var captions: Int = 40

    @Option(help: "Seconds the server takes to answer in the overhead runs.")
    var serverDelay: Double = 0.2

    @Option(help: "Frames per second of the live run (the server then takes 10 frame intervals).")
    var fps: Double = 2

    final class BenchContext: NodeContext, @unchecked Sendable {
        let clock: any GraphClock = SystemClock()
        let pipelineName = "bench-vlm"
        let pipelineHash = "bench"
        let metrics = GraphMetrics()
        func post(_ status: StatusEvent) {}
    }

    func run() throws {
        FFmpegLogLevel.quiet.apply()
        let python = try findExecutable("python3")
        let root = NSTemporaryDirectory() + "sightline-bench-vlm-\(getpid())"
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cpu = cpuName()
        print("bench vlm: vlm_captions, 3 frames of 1280x720 per caption (sent at 768 wide), Python http.server on loopback; \(ProcessInfo.processInfo.activeProcessorCount) cores, \(cpu)")

        // (1) Overhead per caption beyond the server's time.
        let server = try PythonModelServer(python: python, folder: root, delay: serverDelay)
        defer { server.stop() }
        let context = BenchContext()
        let frames = (0..<6).map { Self.frame($0, seconds: Double($0) * 0.5) }
        var overheads: [Double] = [], ownWork: [Double] = []
        for index in 0..<captions {
            let node = try makeNode(endpoint: server.url, root: root + "/cache-\(index)")
            for frame in frames { try node.process(.frame(frame), context: context) { _ in } }
            let caption = Record(.caption(Caption(text: "A test picture \(index).", maskedTerms: [], repeated: false, labels: [("web site", 0.3)], onScreenText: [])),
                                 sourceID: "cam", start: 0, end: 2.5)
            var answered = false
            let started = Date()
            try node.process(.record(caption), context: context) { _ in }
            ownWork.append(Date().timeIntervalSince(started))
            while !answered && Date().timeIntervalSince(started) < 30 {
                try node.flush(context: context) { item in
                    if case .record(let r) = item, r.provenance.first?.name == "bench-model" { answered = true }
                }
                if !answered { usleep(200) }
            }
            guard answered else { throw ValidationError("caption \(index) got no answer from the local server") }
            overheads.append(Date().timeIntervalSince(started) - serverDelay)
        }
        overheads.sort()
        ownWork.sort()
        // The HTTP exchange alone: the same server, a request with no pictures.
        var exchanges: [Double] = []
        for _ in 0..<10 {
            let started = Date()
            let client = ModelServerClient(settings: ModelServerSettings(endpoint: server.url, retry: RetryPolicy(retries: 0)))
            let done = DispatchSemaphore(value: 0)
            Task.detached {
                _ = await client.chat(.init(model: "m", prompt: "x", images: []))
                done.signal()
            }
            done.wait()
            exchanges.append(Date().timeIntervalSince(started) - serverDelay)
        }
        exchanges.sort()
        func percentile(_ values: [Double], _ p: Double) -> Double { values.isEmpty ? .nan : values[min(values.count - 1, Int(Double(values.count - 1) * p))] }
        print("")
        print(String(format: "  overhead per caption beyond the server's %.0f ms: p50 %.2f ms, p95 %.2f ms, max %.2f ms (target ≤ 5 ms: %@)",
                     serverDelay * 1000, percentile(overheads, 0.5) * 1000, percentile(overheads, 0.95) * 1000, (overheads.last ?? .nan) * 1000,
                     percentile(overheads, 0.5) * 1000 <= 5 ? "met at p50" : "MISSED"))
        print(String(format: "    of which the node's own work on the pipeline's thread (choose frames, JPEG-encode 3, build the prompt): p50 %.2f ms, p95 %.2f ms",
                     percentile(ownWork, 0.5) * 1000, percentile(ownWork, 0.95) * 1000))
        print(String(format: "    an empty request to the same Python server costs p50 %.2f ms beyond its delay (its own HTTP handling)", percentile(exchanges, 0.5) * 1000))

        // (2) Frames through the node with a server 10× slower than the frame interval.
        let slow = try PythonModelServer(python: python, folder: root + "/slow", delay: 10 / fps)
        defer { slow.stop() }
        func frameWaits(endpoint: String) throws -> [Double] {
            let node = try makeNode(endpoint: endpoint, root: root + "/live-\(endpoint.isEmpty ? "none" : "slow")", cache: false)
            var waits: [Double] = []
            let count = Int(fps * 20)
            for i in 0..<count {
                let frame = Self.frame(i, seconds: Double(i) / fps)
                let t0 = Date()
                try node.process(.frame(frame), context: context) { _ in }
                waits.append(Date().timeIntervalSince(t0))
                // A caption every 4 s, as live.yaml's window.
                if i % Int(fps * 4) == Int(fps * 4) - 1 {
                    let caption = Record(.caption(Caption(text: "window", maskedTerms: [], repeated: false, labels: [], onScreenText: [])),
                                         sourceID: "cam", start: Double(i + 1) / fps - 4, end: Double(i) / fps)
                    try node.process(.record(caption), context: context) { _ in }
                }
                try node.flush(context: context) { _ in }
                Thread.sleep(forTimeInterval: max(0, 1 / fps - Date().timeIntervalSince(t0)) / 10)   // 10× faster than real time
            }
            return waits.sorted()
        }
        let fast = try PythonModelServer(python: python, folder: root + "/fast", delay: 0)
        defer { fast.stop() }
        let without = try frameWaits(endpoint: fast.url), with = try frameWaits(endpoint: slow.url)
        print("")
        print(String(format: "  the node's time per 720p frame on the pipeline's thread, %d frames, a caption every 4 s:", without.count))
        print(String(format: "    server answering at once:         p50 %.3f ms, p99 %.3f ms", percentile(without, 0.5) * 1000, percentile(without, 0.99) * 1000))
        print(String(format: "    server answering in %.1f s (10×): p50 %.3f ms, p99 %.3f ms (ratio p99 %.2f)", 10 / fps, percentile(with, 0.5) * 1000, percentile(with, 0.99) * 1000,
                     percentile(with, 0.99) / max(percentile(without, 0.99), 1e-9)))
        print("    (frames pass on before this work, which keeps a downscaled copy; requests run off the pipeline's thread)")
    }

    func makeNode(endpoint: String, root: String, cache: Bool = true) throws -> NodeProcessor {
        var spec = PipelineParser.parse(text: """
        pipeline: bench-vlm
        nodes:
          cam: {type: synthetic, count: 1}
          labels: {type: labels}
          captions: {type: captions, window: 4}
          vlm: {type: vlm_captions, endpoint: "\(endpoint)", model: bench-model, frames: 3, cache: "\(cache ? root : "")", retries: 0, timeout: 60}
          out: {type: jsonl, path: "\(root)/out.jsonl"}
        edges:
          - cam -> labels
          - labels -> captions
          - captions -> vlm
          - vlm -> out
        """, file: root + "/bench.yaml").0
        spec?.applyOutput(root)
        guard let spec, let factory = BuiltinNodes.registry.factory("vlm_captions") else { throw ValidationError("cannot build the vlm_captions node") }
        let validated = try PipelineValidator.validate(spec, registry: BuiltinNodes.registry).get()
        guard let node = validated.node("vlm") else { throw ValidationError("no vlm node") }
        guard case .processor(let processor) = try factory.make("vlm", node.options) else {
            throw ValidationError("vlm_captions is not a processor")
        }
        return processor
    }
    static func frame(_ index: Int, seconds: Double) -> Frame {
        let width = 1280, height = 720
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in stride(from: 0, to: height, by: 1) {
            for x in 0..<width { pixels[(y * width + x) * 3] = UInt8((x + index * 8) & 255); pixels[(y * width + x) * 3 + 1] = UInt8(y & 255) }
        }
        return Frame(sourceID: "cam", decodeIndex: index, timestamp: Timestamp(pts: Int64(index), timeBase: Rational(1, 2)), seconds: seconds,
                     ingestWallClock: Date().timeIntervalSince1970, isKeyframe: false, width: width, height: height, pixelFormat: .rgb24, pixels: pixels)
    }
}

/// A Python http.server answering chat completions after a fixed delay: the stand-in for a
/// model server whose own time is known.
final class PythonModelServer {
    let process = Process()
    let port: Int
    var url: String { "http://127.0.0.1:\(port)/v1" }

    init(python: String, folder: String, delay: Double) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        port = try freeLoopbackPort()
        let script = folder + "/server.py"
        try """
        import json, sys, time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        delay = float(sys.argv[2])
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True   # else 40 ms delayed-ACK stalls between headers and body
            def log_message(self, *args): pass
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                model = json.loads(body).get("model", "m")
                time.sleep(delay)
                out = json.dumps({"model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": "A picture."}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
        ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
        """.write(toFile: script, atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, String(port), String(delay)]
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until it listens.
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            close(fd)
            if connected == 0 { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw ValidationError("the Python model server did not start on port \(port)")
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}
