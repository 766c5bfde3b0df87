import Foundation
import Testing
import SightlineCore
import SightlineTestSupport
@testable import SightlineMedia

/// `sightline clip`'s cutter on a clip whose keyframes sit every second (30 fps, B-frames, AAC).
@Suite struct ClipTests {
    static func source() throws -> String {
        let path = Fixtures.shared.directory + "/clip-source-\(UUID().uuidString).mp4"
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                                "-t", "6", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-bf", "2",
                                "-x264-params", "keyint=30:min-keyint=30:scenecut=0", "-c:a", "aac", "-shortest", path])
        return path
    }

    private func streams(_ path: String) throws -> (video: Int, audio: Int, duration: Double) {
        let out = try Tool.run("ffprobe", ["-v", "error", "-count_packets", "-show_entries", "stream=codec_type,nb_read_packets:format=duration", "-of", "csv=p=0", path]).stdout
        let lines = out.split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
        let video = lines.first { $0.first == "video" }.flatMap { Int($0[1]) } ?? 0
        let audio = lines.first { $0.first == "audio" }.flatMap { Int($0[1]) } ?? 0
        let duration = lines.last.flatMap { Double($0[0]) } ?? 0
        return (video, audio, duration)
    }

    /// A frame as 32x24 gray bytes.
    private func gray(_ path: String, frame: Int) throws -> [UInt8] {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("clip-frame-\(UUID().uuidString).gray").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-i", path, "-vf", "select=eq(n\\,\(frame)),scale=32:24", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", out])
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
    }

    private func difference(_ a: [UInt8], _ b: [UInt8]) -> Double {
        guard a.count == b.count, !a.isEmpty else { return .infinity }
        return Double(zip(a, b).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }) / Double(a.count)
    }

    @Test func copyingStartsAtTheKeyframeBeforeAndKeepsTheWholeSpan() throws {
        let input = try Self.source()
        let output = Fixtures.shared.directory + "/clip-copy-\(UUID().uuidString).mp4"
        let result = try MediaClipper.clip(input: input, from: 2.5, to: 4.0, output: output, reencode: false)
        #expect(abs(result.start - 2.0) < 1e-6, "keyframes are every second: \(result)")
        let probed = try streams(output)
        #expect(probed.video == 60, "2.0–4.0 s at 30 fps: \(probed)")
        #expect(probed.audio > 80, "audio copied too: \(probed)")
        #expect(abs(probed.duration - 2.0) < 0.1, "\(probed)")
        // The clip's first frame is the source's frame at 2.0 s.
        #expect(difference(try gray(output, frame: 0), try gray(input, frame: 60)) < 2)
    }

    @Test func reencodingCutsOnTheExactFrames() throws {
        let input = try Self.source()
        let output = Fixtures.shared.directory + "/clip-exact-\(UUID().uuidString).mkv"
        let result = try MediaClipper.clip(input: input, from: 2.5, to: 4.0, output: output, reencode: true)
        #expect(result.videoFrames == 45)
        let probed = try streams(output)
        #expect(probed.video == 45, "\(probed)")
        #expect(probed.audio > 60)
        let first = try gray(output, frame: 0)
        let matched = difference(first, try gray(input, frame: 75))
        let neighbour = min(difference(first, try gray(input, frame: 74)), difference(first, try gray(input, frame: 76)))
        #expect(matched < neighbour / 2, "the first frame is the source's frame 75: \(matched) vs neighbours \(neighbour)")
        let last = try gray(output, frame: 44)
        #expect(difference(last, try gray(input, frame: 119)) < difference(last, try gray(input, frame: 120)) / 2)
    }

    @Test func badSpansAndInputsAreClearErrors() throws {
        let input = try Self.source()
        let output = Fixtures.shared.directory + "/clip-bad-\(UUID().uuidString).mp4"
        #expect(throws: SightlineError.self) { try MediaClipper.clip(input: input, from: 7, to: 8, output: output, reencode: false) }
        #expect(throws: SightlineError.self) { try MediaClipper.clip(input: input, from: 3, to: 2, output: output, reencode: false) }
        #expect(throws: SightlineError.self) { try MediaClipper.clip(input: input, from: 1, to: 2, output: output + ".nosuchcontainer", reencode: false) }
        #expect(throws: SightlineError.self) { try MediaClipper.clip(input: try Fixtures.shared.audioOnly(), from: 0, to: 0.5, output: output, reencode: false) }
        #expect(throws: (any Error).self) { try MediaClipper.clip(input: "/nonexistent.mp4", from: 0, to: 1, output: output, reencode: false) }
    }
}
