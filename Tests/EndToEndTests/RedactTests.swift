import Foundation
import Testing
import SightlineTestSupport

/// `sightline redact` on a real talking-head clip with a sound track: every frame comes out,
/// the detector finds no face in any of them (it finds one in the input's), the audio is kept.
@Suite(.serialized) struct RedactTests {
    let bin = sightlineBinary()

    func faceFrames(_ path: String) throws -> (frames: Int, withFace: Int) {
        let lines = try Tool.run(bin, ["detect", "face-full", path, "--fps", "25", "--json"]).stdout.split(separator: "\n")
        let counts = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }.map { ($0["count"] as? Int) ?? 0 }
        return (counts.count, counts.filter { $0 > 0 }.count)
    }

    func streams(_ path: String) throws -> [String] {
        try Tool.run("ffprobe", ["-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", path]).stdout
            .split(separator: "\n").map { String($0) }
    }

    @Test(arguments: ["pixelate", "blur"])
    func noFrameShowsAFaceAndTheAudioIsKept(style: String) throws {
        let dir = Fixtures.shared.directory
        let input = dir + "/redact-in-\(UUID().uuidString).mp4", output = dir + "/redact-out-\(UUID().uuidString).mp4"
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-i", try SampleVideos.path("carphone_pristine.mp4"), "-f", "lavfi", "-i", "sine=frequency=440:duration=4",
                                "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-c:a", "aac", "-shortest", input])
        let before = try faceFrames(input)
        #expect(before.withFace * 10 >= before.frames * 9, "the input shows a face in most frames: \(before)")
        let run = try Tool.run(bin, ["redact", input, output, "--style", style])
        #expect(run.stderr.contains("audio copied"), "\(run.stderr)")
        let after = try faceFrames(output)
        #expect(after.frames == before.frames, "every frame is written")
        #expect(after.withFace == 0, "a face was found in \(after.withFace) redacted frames")
        #expect(try streams(output) == ["video", "audio"])
    }

    @Test func badInputsAreRefusedClearly() throws {
        let missing = try Tool.run(bin, ["redact", "/nonexistent/clip.mp4", Fixtures.shared.directory + "/x.mp4"], check: false)
        #expect(missing.status != 0 && missing.stderr.hasPrefix("sightline: ") && missing.stderr.contains("/nonexistent/clip.mp4"), "\(missing.stderr)")
        let clip = try SampleVideos.path("carphone_pristine.mp4")
        let existing = Fixtures.shared.directory + "/exists-\(UUID().uuidString).mp4"
        FileManager.default.createFile(atPath: existing, contents: Data())
        let refused = try Tool.run(bin, ["redact", clip, existing], check: false)
        #expect(refused.status != 0 && refused.stderr.contains("--overwrite"), "\(refused.stderr)")
        let style = try Tool.run(bin, ["redact", clip, existing, "--overwrite", "--style", "swirl"], check: false)
        #expect(style.status != 0 && style.stderr.contains("pixelate, blur or fill"), "\(style.stderr)")
    }
}
