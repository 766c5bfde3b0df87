import ArgumentParser
import Foundation
import SightlineCore
import SightlineGraph
import SightlineMedia
import SightlineNATS
import SightlineNodes

/// `sightline bench edge`: Pipelines/edge-core.yaml split over a real nats-server on loopback.
/// Per clip, the edge side runs on the file and the bytes it sent are read from the server
/// (the link stream's stored bytes); the core side then takes them and runs its models. The
/// bytes per camera-hour are set against the clip's own bitrate (its file size over its
/// duration), the reference every camera already sends. The pictures the core rebuilt are
/// compared with the originals (PSNR) by replaying the same frames through the link's
/// packer and rebuilder in this process.
struct BenchEdgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edge",
        abstract: "Edge/core split on a local nats-server: bytes sent per camera-hour against the source's bitrate (target: ≥ 80% less on a fixed camera), rebuilt-picture PSNR.")

    @Option(help: "A fixed-camera clip (default: the vtest.avi sample, a still street camera).")
    var fixed: String?

    @Option(help: "A moving-camera clip (default: the bikes.mp4 sample).")
    var moving: String?

    @Flag(help: "Measure the bytes only; do not run the core side's models.")
    var skipCore = false

    func run() throws {
        FFmpegLogLevel.quiet.apply()
        let samples = cacheRoot() + "/samples"
        let clips = [("fixed camera", fixed ?? samples + "/vtest.avi"), ("moving camera", moving ?? samples + "/bikes.mp4")]
        for (_, path) in clips where !FileManager.default.fileExists(atPath: path) {
            throw ValidationError("no clip at \(path): run Scripts/setup (it fetches the samples) or pass --fixed/--moving")
        }
        let server = try findExecutable("nats-server")
        let root = NSTemporaryDirectory() + "sightline-bench-edge-\(getpid())"
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }

        // The shipped pipeline, with one change: a file is read whole (edges block) instead of
        // at a camera's pace with the oldest frame dropped. Bytes per media second are the same.
        let shipped = repositoryFile("Pipelines/edge-core.yaml")
        let text = try String(contentsOfFile: shipped, encoding: .utf8)
        let liveDefaults = "defaults: {policy: drop-oldest, capacity: 4}"
        guard text.contains(liveDefaults) else { throw ValidationError("\(shipped) no longer has '\(liveDefaults)'; update the bench") }
        let pipeline = (shipped as NSString).deletingLastPathComponent + "/.bench-edge-\(getpid()).yaml"
        try text.replacingOccurrences(of: liveDefaults, with: "defaults: {policy: block, capacity: 8}").write(toFile: pipeline, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: pipeline) }
        let (parsed, diagnostics) = PipelineParser.parse(file: pipeline)
        guard let spec = parsed, diagnostics.isEmpty else { throw Diagnostics(items: diagnostics) }
        let link = Dictionary(spec.link.map { ($0.name, $0.entry.value) }, uniquingKeysWith: { _, b in b })

        let cpu = cpuName()
        print("bench edge: Pipelines/edge-core.yaml split (edge: source 2 fps, people, faces; core: shots, regions, tracks, labels, captions, moderation), link qscale \(link["qscale"] ?? "8"), whole picture every \(link["whole_every"] ?? "60") s; nats-server on loopback; \(ProcessInfo.processInfo.activeProcessorCount) cores, \(cpu)")
        let me = ownExecutable()
        var fixedReduction: Double?
        for (label, clip) in clips {
            let probe = try MediaProbe.probe(url: clip, timeout: 10)
            guard let duration = probe.durationSeconds, duration > 0 else { throw ValidationError("\(clip): no duration") }
            let video = probe.streams.first { $0.isDefaultVideo }
            let fileBytes = Double((try FileManager.default.attributesOfItem(atPath: clip)[.size] as? NSNumber)?.intValue ?? 0)
            let nats = try LocalNATSServer(executable: server, root: root + "/nats-\(label.prefix(5))")
            defer { nats.stop() }

            let edgeStart = Date()
            let edge = try runTool(me, ["run", pipeline, "--role", "edge", "--link", nats.url, "--input", clip, "--quiet", "--progress", "off"])
            let edgeSeconds = Date().timeIntervalSince(edgeStart)
            _ = edge
            let connection = try NATSConnection(NATSSettings(urls: [nats.url]))
            let state = try connection.jetStream.streamState("SIGHTLINE_LINK")
            connection.close()
            let sentPerHour = Double(state.bytes) / duration * 3600, sourcePerHour = fileBytes / duration * 3600
            let reduction = 1 - Double(state.bytes) / fileBytes
            if label == "fixed camera" { fixedReduction = reduction }

            var coreLine = "core side skipped (--skip-core)"
            if !skipCore {
                let coreStart = Date()
                let out = root + "/core-\(label.prefix(5))"
                _ = try runTool(me, ["run", pipeline, "--role", "core", "--link", nats.url, "--set", "out.endpoint=pub+bind:ipc://\(root)/bus-\(getpid())",
                                     "--output", out, "--quiet", "--progress", "off"])
                coreLine = String(format: "core side ran its models on the rebuilt frames in %.1f s", Date().timeIntervalSince(coreStart))
            }
            let fidelity = try replay(clip, link: link)
            print("")
            print("  \(label): \((clip as NSString).lastPathComponent), \(video?.width ?? 0)x\(video?.height ?? 0), \(String(format: "%.1f", duration)) s")
            print(String(format: "    source video:   %8.1f kbit/s = %7.1f MB per camera-hour", fileBytes * 8 / duration / 1000, sourcePerHour / 1e6))
            print(String(format: "    edge -> core:   %8.1f kbit/s = %7.1f MB per camera-hour (%llu messages, stored bytes on the server)",
                         Double(state.bytes) * 8 / duration / 1000, sentPerHour / 1e6, state.messages))
            print(String(format: "    sent / source:  %.3f  (%.1f%% less)", Double(state.bytes) / fileBytes, reduction * 100))
            print(String(format: "    frames: %d whole, %d changed tiles, %d unchanged; rebuilt PSNR mean %.1f dB, min %.1f dB",
                         fidelity.whole, fidelity.tiles, fidelity.unchanged, fidelity.meanPSNR, fidelity.minPSNR))
            print(String(format: "    edge side ran in %.1f s; ", edgeSeconds) + coreLine)
        }
        if let fixedReduction {
            print("")
            print(String(format: "target: ≥ 80%% fewer bytes than the source on the fixed camera: %.1f%% — %@", fixedReduction * 100,
                         fixedReduction >= 0.8 ? "met" : "MISSED"))
        }
    }

    struct Fidelity {
        var whole = 0, tiles = 0, unchanged = 0
        var meanPSNR = 0.0, minPSNR = Double.infinity
    }

    /// The clip's 2 fps frames through the link's packer and rebuilder, as the edge and the
    /// core run them: how close the core's pictures are to the edge's.
    func replay(_ clip: String, link: [String: String]) throws -> Fidelity {
        func number(_ key: String, _ fallback: Double) -> Double { link[key].flatMap(Double.init) ?? fallback }
        var packer = FramePacker(tileSize: Int(number("tile", 16)), threshold: number("threshold", 12), minChangedPixels: number("min_pixels", 0.1),
                                 wholeAbove: number("whole_above", 0.6), wholeEvery: number("whole_every", 60), qscale: Int(number("qscale", 8)))
        var rebuilder = FrameRebuilder(maxPixels: 16384 * 16384)
        let source = VideoSource(url: clip, options: SourceOptions(sourceID: "cam", sampling: .perSecond(Rational(2, 1))))
        var fidelity = Fidelity()
        var total = 0.0, count = 0
        while let event = try source.next() {
            guard case .frame(let frame) = event else { continue }
            let (info, parts) = try packer.pack(frame)
            switch info.transfer {
            case .full: fidelity.whole += 1
            case .tiles: fidelity.tiles += 1
            case .unchanged: fidelity.unchanged += 1
            }
            let data = try LinkCodec.encode(frame: info, parts: parts, sentAt: 0)
            guard case .frame(let rebuilt) = try rebuilder.frame(from: try LinkCodec.decode(data)) else { continue }
            var squared = 0.0
            for (a, b) in zip(rebuilt.pixels, frame.pixels) {
                let difference = Double(a) - Double(b)
                squared += difference * difference
            }
            let mse = squared / Double(max(1, frame.pixels.count))
            let psnr = mse == 0 ? 99 : 10 * log10(255 * 255 / mse)
            total += psnr
            count += 1
            fidelity.minPSNR = min(fidelity.minPSNR, psnr)
        }
        fidelity.meanPSNR = count > 0 ? total / Double(count) : .nan
        return fidelity
    }
}
