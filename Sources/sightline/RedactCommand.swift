import ArgumentParser
import Foundation
import SightlineCore
import SightlineKernels
import SightlineMedia
import SightlineModels
import SightlineNodes

/// `sightline redact IN OUT`: every frame decoded, faces found (BlazeFace), tracked between
/// detections and extended back over a few frames so no frame shows one, hidden, and the video
/// re-encoded by FFmpeg (libx264) with the audio kept.
struct RedactCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redact", abstract: "Blur or pixelate every face in a video and write a new file (audio kept).",
        discussion: """
        Every frame is decoded and checked (or every Nth with --every, tracks covering the frames between). A face stays \
        hidden for --coast frames after the detector loses it, and a face found late is hidden --lookback frames back too. \
        The video is encoded with FFmpeg's libx264 (the ffmpeg program Scripts/setup installs); the audio is copied, or \
        encoded as AAC when the output container cannot hold it. Frames are written at the source's average frame rate: a \
        variable-frame-rate source comes out constant-rate, same frames, same length.
        """)

    @Argument(help: "Video file or URL to redact.") var input: String
    @Argument(help: "Output file (.mp4, .mkv, .mov).") var output: String
    @Option(help: "pixelate, blur or fill.") var style: String = "pixelate"
    @Option(help: "full (faces up to about 5 m) or short (within about 2 m, faster).") var range: String = "full"
    @Option(help: "Keep detections scoring at least this (default: the model's own threshold; lower hides more).") var minScore: Double?
    @Option(help: "Grow each face box by this share of its size on every side.") var margin: Double = 0.25
    @Option(help: "Run the detector on every Nth frame (tracks cover the frames between).") var every: Int = 1
    @Option(help: "Frames a face stays hidden at its predicted place after the detector loses it.") var coast: Int = 5
    @Option(help: "Frames held back so a face found late is hidden in the frames before it too.") var lookback: Int = 5
    @Option(help: "libx264 quality (lower is better, 18–28 typical).") var crf: Int = 20
    @Flag(help: "Replace OUT if it exists.") var overwrite = false
    @OptionGroup var cache: ModelCacheOption

    func run() throws {
        FFmpegLogLevel.quiet.apply()
        KernelThreads.setBLASThreads(1)
        guard let style = RedactionStyle(rawValue: style) else {
            throw CommandError("--style must be pixelate, blur or fill, not '\(self.style)'")
        }
        guard range == "full" || range == "short" else { throw CommandError("--range must be full or short, not '\(range)'") }
        guard every >= 1, every <= 1000 else { throw CommandError("--every must be from 1 to 1000") }
        guard (0...100).contains(lookback), (0...10_000).contains(coast), (0...2).contains(margin), (0...51).contains(crf) else {
            throw CommandError("out of range", hint: "--lookback 0…100, --coast 0…10000, --margin 0…2, --crf 0…51")
        }
        if FileManager.default.fileExists(atPath: output) && !overwrite {
            throw CommandError("\(output) exists", hint: "pass --overwrite to replace it")
        }
        guard URL(fileURLWithPath: output).standardizedFileURL.path != URL(fileURLWithPath: input).standardizedFileURL.path else {
            throw CommandError("the output would overwrite the input")
        }
        let report = try MediaProbe.probe(url: input)
        let videos = report.streams.filter { $0.type == "video" }
        guard let video = videos.first(where: { $0.isDefaultVideo }) ?? videos.first else {
            throw CommandError("\(input) has no video stream")
        }
        let fps = video.frameRate.flatMap { $0 > 0 && $0 < 1000 ? $0 : nil } ?? 25
        let audio = report.streams.first { $0.type == "audio" }

        let store = cache.store
        try store.fetch(ModelZoo.mediapipe)
        let graph: MediaPipeDetectors.Graph = range == "short" ? .faceShort : .faceFull
        var detector = try MediaPipeDetectors.detector(graph, store: store, threads: ProcessInfo.processInfo.activeProcessorCount)
        if let minScore {
            var configuration = detector.configuration
            configuration.decoding.minScore = Float(minScore)
            detector = try BlazeDetector(model: detector.model, configuration: configuration)
        }

        let source = VideoSource(url: input, options: SourceOptions(sampling: .all, output: OutputFormat(pixelFormat: .rgb24)))
        var encoder: FFmpegEncoder?
        var planner = RedactionPlanner<Frame>(lookback: lookback, coast: max(coast, 2 * every))
        var counts = (frames: 0, detected: 0, hidden: 0, faces: 0)
        let started = monotonicSeconds()
        func write(_ released: [RedactionPlanner<Frame>.Released]) throws {
            for item in released {
                var frame = item.payload
                Redactor.apply(&frame, boxes: item.boxes, style: style, margin: margin)
                if !item.boxes.isEmpty { counts.hidden += 1 }
                try encoder?.write(frame)
            }
        }
        while let event = try source.next() {
            guard case .frame(let frame) = event else { continue }
            if encoder == nil {
                encoder = try FFmpegEncoder(output: output, input: input, width: frame.width, height: frame.height, fps: fps, crf: crf,
                                            audioCodec: audio?.codec, overwrite: overwrite)
            }
            var detections: [PixelBox]?
            if counts.frames % every == 0 {
                let boxes = MediaPipeDetectors.objects(try detector.detect(frame), graph: graph, width: frame.width, height: frame.height).map(\.box)
                detections = boxes
                counts.detected += 1
                counts.faces += boxes.count
            }
            counts.frames += 1
            try write(planner.push(frame, detections: detections, at: frame.seconds))
        }
        try write(planner.finish())
        guard let encoder else { throw CommandError("no frames decoded from \(input)") }
        try encoder.finish()
        let seconds = monotonicSeconds() - started
        printError(String(format: "redact: %d frames (%.1f frames/s), detector on %d, %d face detections, faces hidden in %d frames → %@%@",
                          counts.frames, Double(counts.frames) / max(seconds, 1e-9), counts.detected, counts.faces, counts.hidden, output,
                          audio == nil ? " (no audio track)" : (encoder.audioCopied ? " (audio copied)" : " (audio encoded as AAC)")))
    }
}

/// The `ffmpeg` program reading raw RGB frames on its standard input and the source's audio
/// from the source itself. Writing our own libavcodec encoder and muxer would duplicate what
/// the ffmpeg CLI (already a set-up dependency) does well; frames cross a pipe once.
final class FFmpegEncoder {
    private let process = Process()
    private let stdin = Pipe()
    private let stderr = Pipe()
    private let width: Int, height: Int
    let audioCopied: Bool

    /// Audio codecs MP4/MOV hold as they are; others are encoded as AAC there.
    static let mp4Audio: Set<String> = ["aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"]

    init(output: String, input: String, width: Int, height: Int, fps: Double, crf: Int, audioCodec: String?, overwrite: Bool) throws {
        self.width = width
        self.height = height
        let ext = (output as NSString).pathExtension.lowercased()
        audioCopied = audioCodec.map { ext == "mkv" || Self.mp4Audio.contains($0) } ?? false
        var arguments = ["-v", "error", overwrite ? "-y" : "-n",
                         "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "\(width)x\(height)", "-r", String(format: "%.6f", fps), "-i", "pipe:0",
                         "-i", input, "-map", "0:v:0", "-map", "1:a?"]
        // libx264 with 4:2:0 needs even sizes: pad one pixel, never crop.
        if width % 2 != 0 || height % 2 != 0 { arguments += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"] }
        arguments += ["-c:v", "libx264", "-preset", "medium", "-crf", "\(crf)", "-pix_fmt", "yuv420p"]
        arguments += audioCopied ? ["-c:a", "copy"] : ["-c:a", "aac", "-b:a", "160k"]
        arguments.append(output)
        process.executableURL = URL(fileURLWithPath: try findExecutable("ffmpeg"))
        process.arguments = arguments
        process.standardInput = stdin
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        signal(SIGPIPE, SIG_IGN)  // ffmpeg quitting early is reported below, not by a signal
        try process.run()
    }

    func write(_ frame: Frame) throws {
        guard frame.width == width, frame.height == height, frame.pixelFormat == .rgb24 else {
            throw CommandError("the video changes size mid-stream (\(width)x\(height) → \(frame.width)x\(frame.height))",
                               hint: "redact cannot encode a size change into one file")
        }
        do {
            try stdin.fileHandleForWriting.write(contentsOf: frame.pixels)
        } catch {
            process.waitUntilExit()
            throw CommandError("ffmpeg stopped while encoding: \(errorText())")
        }
    }

    func finish() throws {
        try stdin.fileHandleForWriting.close()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CommandError("ffmpeg failed (status \(process.terminationStatus)): \(errorText())") }
    }

    private func errorText() -> String {
        let text = String(decoding: stderr.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "no message" : String(text.suffix(400))
    }
}
