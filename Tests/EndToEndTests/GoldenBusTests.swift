import Foundation
import Testing
import SightlineCore
import SightlineTestSupport

/// The bus bytes stay as Docs/bus.md says: Golden/golden.yaml (every built-in result kind) runs
/// on two fixed clips, and every message header is compared to Golden/golden.jsonl, key order
/// and number literals included. Ignored: wall-clock values (only their presence counts), the
/// delta status's measured `model_seconds`, and the pipeline hash (it covers the --input and
/// --set paths, which differ per machine; it must still be 64 hex digits). Machine paths, the
/// clips' hashes and the sign's size (its encoder's build may differ) are replaced by placeholders. Numbers that models compute may differ in
/// their last digits on another CPU (summation order), so floats compare within 1e-3
/// (relative), OCR box corners within a pixel; everything else is exact.
///
/// To accept an intended schema change: `SIGHTLINE_UPDATE_GOLDEN=1 swift test --filter GoldenBusTests`,
/// then review the diff of golden.jsonl like any other change.
@Suite struct GoldenBusTests {
    let bin = sightlineBinary()
    let folder = repositoryRoot + "/Tests/EndToEndTests/Golden"

    /// A white sign whose middle second reads "Oh damn" (a word on the policy's list), encoded
    /// losslessly so its decoded pixels are the same on every machine.
    static func signClip() throws -> String {
        let folder = Fixtures.shared.directory + "/golden-signs"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/sign.mp4"
        if FileManager.default.fileExists(atPath: path) { return path }
        let font = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
        let partial = Fixtures.shared.directory + "/golden-sign.\(getpid()).partial.mp4"
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "color=c=white:s=480x160:r=25", "-t", "3", "-vf",
                                "drawtext=fontfile=\(font):text='Oh damn':fontsize=48:fontcolor=black:x=40:y=50:enable='between(t,1,2)',"
                                + "drawtext=fontfile=\(font):text='All good':fontsize=48:fontcolor=black:x=40:y=50:enable='not(between(t,1,2))'",
                                "-c:v", "libx264", "-qp", "0", "-threads", "1", "-pix_fmt", "yuv420p", partial])
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.moveItem(atPath: partial, toPath: path)
        return path
    }

    @Test func everyHeaderMatchesTheCommittedExpectation() throws {
        let film = try SampleVideos.path("bigbuckbunny.mp4")
        let sign = try Self.signClip()
        let output = Fixtures.shared.directory + "/golden-\(getpid()).jsonl"
        let policy = repositoryRoot + "/Pipelines/moderation-policy.yaml"
        try Tool.run(bin, ["run", folder + "/golden.yaml", "--input", "film=\(film)", "--input", "signs=\((sign as NSString).deletingLastPathComponent)",
                           "--set", "file.path=\(output)", "--set", "captions.policy=\(policy)",
                           "--set", "moderation.policy=\(policy)", "--quiet"])
        func sha256(_ path: String) throws -> String {
            try Tool.run("sha256sum", [path]).stdout.split(separator: " ").first.map(String.init) ?? ""
        }
        // Longest first: the film sits in the cache, which may lie inside another placeholder's path.
        let placeholders = [(film, "$FILM"), (sign, "$SIGN"), (try sha256(film), "$FILM_SHA256"), (try sha256(sign), "$SIGN_SHA256"),
                            ("\"size\":\(try FileManager.default.attributesOfItem(atPath: sign)[.size] as? Int ?? -1)", "\"size\":\"$SIGN_SIZE\""),
                            (repositoryRoot, "$ROOT")].sorted { $0.0.count > $1.0.count }
        let actual = try Self.normalised(String(contentsOfFile: output, encoding: .utf8), placeholders: placeholders)

        let expectedPath = folder + "/golden.jsonl"
        if ProcessInfo.processInfo.environment["SIGHTLINE_UPDATE_GOLDEN"] == "1" {
            try (actual.map(\.text).joined(separator: "\n") + "\n").write(toFile: expectedPath, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOfFile: expectedPath, encoding: .utf8).split(separator: "\n").map { line in
            let message = try OrderedJSON.parse(String(line))
            return (topic: message["topic"]?.string ?? "", header: message["header"] ?? .null)
        }
        #expect(actual.map(\.topic) == expected.map(\.topic), "the same messages on the same topics, in the same order per topic")
        var hashes = Set<String>()
        for (got, want) in zip(actual, expected) where got.topic == want.topic {
            var differences: [String] = []
            Self.compare(got.header, want.header, path: [], differences: &differences)
            #expect(differences.isEmpty, "\(got.topic) \(got.header["seq"].map { "\($0)" } ?? ""): \(differences.joined(separator: "; "))")
            if case .string(let hash)? = got.header["pipeline"]?["hash"] { hashes.insert(hash) }
        }
        #expect(hashes.count == 1 && hashes.allSatisfy { $0.count == 64 && $0.allSatisfy(\.isHexDigit) }, "\(hashes)")
    }

    /// The run's lines, paths and clip hashes replaced by placeholders, sorted by topic and then
    /// by sequence number (topics interleave differently from run to run; within one topic the
    /// order is the schema's).
    static func normalised(_ text: String, placeholders: [(String, String)]) throws -> [(topic: String, seq: Int, header: OrderedJSON, text: String)] {
        try text.split(separator: "\n").map { raw in
            var line = String(raw)
            for (value, placeholder) in placeholders where !value.isEmpty { line = line.replacingOccurrences(of: value, with: placeholder) }
            let message = try OrderedJSON.parse(line)
            let header = message["header"] ?? .null
            guard case .number(let seq)? = header["seq"], let number = Int(seq) else { throw OrderedJSON.ParseError(offset: 0) }
            return (message["topic"]?.string ?? "", number, header, line)
        }
        .filter { $0.header["data"]?["event"]?.string != "heartbeat" }
        .sorted { ($0.topic, $0.seq) < ($1.topic, $1.seq) }
    }

    static let ignoredValues: Set<[String]> = [["wallclock"], ["ingest_wallclock"], ["data", "model_seconds"], ["data", "mtime"], ["pipeline", "hash"]]

    /// Every difference between a header and its expectation, by path.
    static func compare(_ got: OrderedJSON, _ want: OrderedJSON, path: [String], differences: inout [String]) {
        let at = path.isEmpty ? "header" : path.joined(separator: ".")
        if ignoredValues.contains(path) { return }
        switch (got, want) {
        case let (.object(a), .object(b)):
            let keysA = a.map(\.key), keysB = b.map(\.key)
            guard keysA == keysB else {
                differences.append("\(at): keys \(keysA) instead of \(keysB)")
                return
            }
            for (x, y) in zip(a, b) { compare(x.value, y.value, path: path + [x.key], differences: &differences) }
        case let (.array(a), .array(b)):
            guard a.count == b.count else {
                differences.append("\(at): \(a.count) items instead of \(b.count)")
                return
            }
            for (i, (x, y)) in zip(a, b).enumerated() { compare(x, y, path: path + ["\(i)"], differences: &differences) }
        case let (.number(a), .number(b)):
            if a == b { return }
            let isFloat = { (s: String) in s.contains(".") || s.contains("e") || s.contains("E") }
            guard isFloat(a) == isFloat(b), let x = Double(a), let y = Double(b) else {
                differences.append("\(at): \(a) instead of \(b)")
                return
            }
            let tolerance = path.contains("box") ? 1.0 : max(1e-3 * abs(y), 2e-5)
            if !isFloat(a) || abs(x - y) > tolerance { differences.append("\(at): \(a) instead of \(b)") }
        default:
            if got != want { differences.append("\(at): \(got) instead of \(want)") }
        }
    }
}
