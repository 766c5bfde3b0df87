import ArgumentParser
import Foundation
import SightlineCore
import SightlineMedia

/// `sightline bench decode`: our decoder against `ffmpeg -benchmark` on the same files, same
/// thread counts, interleaved in one run so machine noise hits both sides alike.
struct BenchDecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Decode speed vs the ffmpeg CLI (same files, same threads, same run), printed as ratios.",
        discussion: """
        Without FILE arguments, synthesises 720p and 1080p H.264 clips (2 s GOP, B-frames) into \
        the cache directory. Each measurement is the best of --repeat runs; ffmpeg's time is the \
        `rtime` it prints with -benchmark, ours is measured around the same work (after open).
        """
    )

    @Argument(help: "Video files to measure (default: synthesised 720p and 1080p H.264).")
    var files: [String] = []

    @Option(help: "Comma-separated decoder thread counts.")
    var threads: String = "1,2"

    @Option(name: .customLong("repeat"), help: "Runs per measurement; the best is kept.")
    var repeats: Int = 3

    @Option(help: "Seconds of synthesised video per clip.")
    var seconds: Int = 20

    @Option(help: "Where synthesised clips are kept (default: $SIGHTLINE_CACHE or ~/.cache/sightline).")
    var cacheDir: String?

    func validate() throws {
        if repeats < 1 { throw ValidationError("--repeat must be at least 1") }
        if threadCounts.isEmpty { throw ValidationError("--threads needs numbers like 1,2") }
    }

    var threadCounts: [Int] { threads.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.filter { $0 >= 0 } }

    func run() throws {
        let ffmpeg = try findExecutable("ffmpeg")
        let clips = files.isEmpty ? try synthesiseClips(ffmpeg: ffmpeg) : files
        print("sightline bench decode — best of \(repeats), ratio = ours ÷ ffmpeg (higher is better for fps)")
        print(pad("file", 26) + pad("threads", 8) + pad("test", 22) + pad("ffmpeg fps", 12) + pad("ours fps", 12) + "ratio")
        for clip in clips {
            for threadCount in threadCounts {
                try measure(clip: clip, threads: threadCount, ffmpeg: ffmpeg)
            }
        }
    }

    private func measure(clip: String, threads: Int, ffmpeg: String) throws {
        let name = URL(fileURLWithPath: clip).lastPathComponent
        var best = [String: Double]()  // seconds
        var frames = [String: Int]()
        var lowres = 0
        func keep(_ key: String, _ seconds: Double) { best[key] = min(best[key] ?? .infinity, seconds) }

        for _ in 0..<repeats {
            keep("ffmpeg.decode", try ffmpegSeconds(ffmpeg, ["-threads", "\(threads)", "-i", clip, "-map", "0:v:0", "-f", "null", "-"]))
            let decode = try ourRun(clip, SourceOptions(threads: threads, output: nil))
            keep("ours.decode", decode.seconds); frames["decode"] = decode.frames

            keep("ffmpeg.rgb", try ffmpegSeconds(ffmpeg, ["-threads", "\(threads)", "-i", clip, "-map", "0:v:0", "-pix_fmt", "rgb24", "-f", "null", "-"]))
            let rgb = try ourRun(clip, SourceOptions(threads: threads, output: OutputFormat(pixelFormat: .rgb24)))
            keep("ours.rgb", rgb.seconds); frames["rgb"] = rgb.frames

            keep("ffmpeg.key", try ffmpegSeconds(ffmpeg, ["-threads", "\(threads)", "-skip_frame", "nokey", "-i", clip, "-map", "0:v:0", "-f", "null", "-"]))
            let key = try ourRun(clip, SourceOptions(mode: .keyframes, threads: threads, output: OutputFormat(pixelFormat: .rgb24)))
            keep("ours.key", key.seconds); frames["key"] = key.frames

            // Small frames (320 wide, as the shots node takes them) at full quality and fast;
            // ffmpeg gets the same decoder settings, lowres included.
            let small = OutputFormat(width: 320, pixelFormat: .rgb24)
            let full = try ourRun(clip, SourceOptions(threads: threads, output: small))
            keep("ours.small", full.seconds); frames["small"] = full.frames
            let fast = try ourRun(clip, SourceOptions(quality: .fast, threads: threads, output: small))
            keep("ours.fast", fast.seconds); frames["fast"] = fast.frames; lowres = fast.lowres
            keep("ffmpeg.small", try ffmpegSeconds(ffmpeg, ["-threads", "\(threads)", "-i", clip, "-map", "0:v:0", "-vf", "scale=320:-2",
                                                           "-pix_fmt", "rgb24", "-f", "null", "-"]))
            keep("ffmpeg.fast", try ffmpegSeconds(ffmpeg, ["-threads", "\(threads)", "-skip_loop_filter", "all", "-flags2", "fast",
                                                          "-lowres", "\(fast.lowres)", "-i", clip, "-map", "0:v:0", "-vf", "scale=320:-2",
                                                          "-pix_fmt", "rgb24", "-f", "null", "-"]))
        }

        func row(_ test: String, _ key: String, _ count: Int) {
            let theirs = Double(count) / (best["ffmpeg.\(key)"] ?? .infinity)
            let ours = Double(count) / (best["ours.\(key)"] ?? .infinity)
            print(pad(name, 26) + pad("\(threads)", 8) + pad(test, 22) + pad(String(format: "%.1f", theirs), 12)
                + pad(String(format: "%.1f", ours), 12) + String(format: "%.3f", ours / theirs))
        }
        row("decode", "decode", frames["decode"] ?? 0)
        row("decode+rgb24", "rgb", frames["rgb"] ?? 0)
        row("keyframes+rgb24", "key", frames["key"] ?? 0)
        row("320w rgb24", "small", frames["small"] ?? 0)
        row("320w fast" + (lowres > 0 ? " lowres \(lowres)" : ""), "fast", frames["fast"] ?? 0)
        let fastSpeedup = (best["ours.small"] ?? 0) / (best["ours.fast"] ?? .infinity)
        print(pad(name, 26) + pad("\(threads)", 8) + "quality fast vs full at 320 wide (ours, same frames): "
            + String(format: "%.2f× faster", fastSpeedup))
        // Keyframe sampling pays off in wall time for the whole clip, not per frame decoded.
        let speedup = (best["ours.decode"] ?? 0) / (best["ours.key"] ?? .infinity)
        print(pad(name, 26) + pad("\(threads)", 8) + "keyframes-only vs full decode (ours, whole clip): "
            + String(format: "%.1f× faster", speedup))
    }

    private func ourRun(_ clip: String, _ options: SourceOptions) throws -> (seconds: Double, frames: Int, lowres: Int) {
        let source = VideoSource(url: clip, options: options)
        var start: Double?
        var frames = 0
        while let event = try source.next() {
            switch event {
            case .opened: start = monotonicSeconds()
            case .frame: frames += 1
            default: break
            }
        }
        return (monotonicSeconds() - (start ?? monotonicSeconds()), frames, source.lowres)
    }

    private func ffmpegSeconds(_ ffmpeg: String, _ arguments: [String]) throws -> Double {
        let output = try runTool(ffmpeg, ["-hide_banner", "-nostats", "-benchmark"] + arguments)
        guard let range = output.range(of: "rtime="),
              let seconds = Double(output[range.upperBound...].prefix(while: { $0.isNumber || $0 == "." }))
        else {
            throw SightlineError.decoderFailed(input: arguments.joined(separator: " "), reason: "ffmpeg printed no benchmark time:\n\(output.suffix(400))")
        }
        return seconds
    }

    private func synthesiseClips(ffmpeg: String) throws -> [String] {
        let root = cacheDir ?? cacheRoot()
        let dir = root + "/bench"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var clips: [String] = []
        for (label, size) in [("720p", "1280x720"), ("1080p", "1920x1080")] {
            let path = "\(dir)/h264-\(label)-gop60-\(seconds)s.mp4"
            if !FileManager.default.fileExists(atPath: path) {
                FileHandle.standardError.write(Data("synthesising \(path)\n".utf8))
                let temp = path + ".partial.mp4"
                // Noise keeps the bitrate realistic; testsrc2 alone compresses to almost nothing.
                _ = try runTool(ffmpeg, [
                    "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc2=size=\(size):rate=30", "-t", "\(seconds)",
                    "-vf", "noise=alls=12:allf=t", "-c:v", "libx264", "-preset", "veryfast",
                    "-g", "60", "-bf", "2", "-pix_fmt", "yuv420p", temp,
                ])
                try FileManager.default.moveItem(atPath: temp, toPath: path)
            }
            clips.append(path)
        }
        return clips
    }
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
}

func findExecutable(_ name: String) throws -> String {
    // A path (`--python /opt/venv/bin/python`) is taken as it is, not looked up on PATH.
    if name.contains("/") {
        guard FileManager.default.isExecutableFile(atPath: name) else {
            throw SightlineError.cannotOpen(input: name, reason: "not an executable file")
        }
        return name
    }
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
        let path = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw SightlineError.cannotOpen(input: name, reason: "not found on PATH (run Scripts/setup)")
}

/// Runs a tool to completion and returns its combined output; a non-zero exit is an error.
func runTool(_ path: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard process.terminationStatus == 0 else {
        throw SightlineError.toolFailed(command: "\(path) \(arguments.joined(separator: " "))", reason: "exit \(process.terminationStatus): \(text.suffix(400))")
    }
    return text
}
