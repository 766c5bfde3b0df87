import Foundation
import Synchronization

/// Test media synthesised with the ffmpeg CLI into a temporary directory, once per test
/// process; each fixture is made on first use.
public final class Fixtures: Sendable {
    public static let shared = Fixtures()

    public let directory: String
    private let made = Mutex<Set<String>>([])

    private init() {
        // Shared across runs: fixtures are deterministic, and the version tag changes whenever
        // their recipes do. Each file appears by rename, so a killed run leaves no half file.
        directory = NSTemporaryDirectory() + "sightline-fixtures-v1"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// Frames, rate and GOP of the synthesised H.264 clips, known exactly because the encoder is
    /// told to place keyframes at fixed intervals (scenecut off).
    public struct Clip: Sendable {
        public var name: String
        public var size: String
        public var rate: Int
        public var seconds: Int
        public var gop: Int
        public var bFrames: Int
        public var container: String
        public var frameCount: Int { rate * seconds }
    }

    public static let small = Clip(name: "small-bframes", size: "320x240", rate: 30, seconds: 3, gop: 15, bFrames: 3, container: "mp4")
    public static let hd = Clip(name: "hd-720p", size: "1280x720", rate: 25, seconds: 2, gop: 25, bFrames: 2, container: "mp4")
    /// A camera's stream: MPEG-TS, no B-frames, a keyframe a second.
    public static let camera = Clip(name: "camera-p-only", size: "320x240", rate: 30, seconds: 5, gop: 30, bFrames: 0, container: "ts")
    /// MPEG-TS starts its timestamps at 1.4 s (the muxer's default delay): not at zero.
    public static let offsetTS = Clip(name: "offset", size: "320x240", rate: 25, seconds: 3, gop: 25, bFrames: 2, container: "ts")

    public func clip(_ clip: Clip) throws -> String {
        try make("\(clip.name).\(clip.container)") { path in
            var args = ["-f", "lavfi", "-i", "testsrc2=size=\(clip.size):rate=\(clip.rate)", "-t", "\(clip.seconds)",
                        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                        "-bf", "\(clip.bFrames)",
                        "-x264-params", "keyint=\(clip.gop):min-keyint=\(clip.gop):scenecut=0"]
            if clip.container == "mp4" { args += ["-movflags", "+faststart"] }
            return args + [path]
        }
    }

    /// H.264 elementary stream: no container timestamps at all.
    public func rawH264() throws -> String {
        try make("raw.h264") { path in
            ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "2", "-c:v", "libx264", "-preset", "veryfast",
             "-bf", "2", "-pix_fmt", "yuv420p", "-f", "h264", path]
        }
    }

    /// MP4 with its index (moov) at the end, as cameras and ffmpeg write by default.
    public func moovAtEnd() throws -> String {
        try make("moov-at-end.mp4") { path in
            ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "2", "-c:v", "libx264", "-preset", "veryfast",
             "-pix_fmt", "yuv420p", path]
        }
    }

    /// A solid colour, for checking converted pixel values.
    public func solid(color: String, size: String) throws -> String {
        try make("solid-\(color)-\(size).mp4") { path in
            ["-f", "lavfi", "-i", "color=c=\(color):size=\(size):rate=10", "-t", "1", "-c:v", "libx264", "-preset", "veryfast",
             "-pix_fmt", "yuv420p", "-qp", "0", path]
        }
    }

    public func audioOnly() throws -> String {
        try make("tone.wav") { path in ["-f", "lavfi", "-i", "sine=frequency=440:duration=1", path] }
    }

    /// Matroska whose codec id was overwritten with one FFmpeg does not know.
    public func unknownCodec() throws -> String {
        let path = directory + "/unknown-codec.mkv"
        return try made.withLock { done -> String in
            if done.contains(path) { return path }
            let source = directory + "/unknown-codec-source.mkv"
            try Tool.run("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10",
                                    "-t", "1", "-c:v", "libx264", "-preset", "veryfast", source])
            var data = try Data(contentsOf: URL(fileURLWithPath: source))
            let needle = Data("V_MPEG4/ISO/AVC".utf8)
            guard let range = data.range(of: needle) else { throw ToolError.notFound("codec id in mkv") }
            data.replaceSubrange(range, with: Data("V_SIGHTLINE_XYZ".utf8))
            try data.write(to: URL(fileURLWithPath: path))
            done.insert(path)
            return path
        }
    }

    /// A copy of `source` cut to `fraction` of its length.
    public func truncated(_ source: String, fraction: Double) throws -> String {
        let name = (source as NSString).lastPathComponent
        let path = directory + "/trunc-\(Int(fraction * 100))-\(name)"
        let data = try Data(contentsOf: URL(fileURLWithPath: source))
        try data.prefix(Int(Double(data.count) * fraction)).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A copy of `source` with `count` bytes of deterministic garbage written at `fraction`.
    public func corrupted(_ source: String, at fraction: Double, count: Int, seed: UInt64 = 42) throws -> String {
        let name = (source as NSString).lastPathComponent
        let path = directory + "/corrupt-\(Int(fraction * 100))-\(count)-\(name)"
        var data = try Data(contentsOf: URL(fileURLWithPath: source))
        var state = seed
        let start = Int(Double(data.count) * fraction)
        for i in start..<min(start + count, data.count) {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            data[i] = UInt8(truncatingIfNeeded: state >> 33)
        }
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    public func garbageFile() throws -> String {
        let path = directory + "/garbage.mp4"
        var bytes = [UInt8](repeating: 0, count: 64 * 1024)
        var state: UInt64 = 7
        for i in bytes.indices {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            bytes[i] = UInt8(truncatingIfNeeded: state >> 33)
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The fixture `name` in the fixtures folder, made once with the ffmpeg CLI (`arguments`
    /// gets the path to write, a temporary one moved into place when done).
    public func make(_ name: String, _ arguments: (String) -> [String]) throws -> String {
        let path = directory + "/" + name
        return try made.withLock { done -> String in
            if done.contains(path) || FileManager.default.fileExists(atPath: path) { return path }
            let temp = directory + "/partial-\(getpid())-" + name
            try Tool.run("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y"] + arguments(temp))
            try? FileManager.default.removeItem(atPath: path)
            try FileManager.default.moveItem(atPath: temp, toPath: path)
            done.insert(path)
            return path
        }
    }
}
