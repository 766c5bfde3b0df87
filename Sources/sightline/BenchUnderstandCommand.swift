import ArgumentParser
import Foundation
import SightlineCore

/// `sightline bench understand`: Pipelines/understand.yaml per frame against the same pipeline
/// as it was before people, faces, tracks, crops, concepts and the text filter (those nodes
/// removed and those options off), same binary, same clip, alternating runs in one process.
struct BenchUnderstandCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "understand",
        abstract: "understand.yaml per frame vs the same without people/faces/tracks/crops/concepts/text filter (target ≤ 1.3×).")

    @Option(help: "Clip (default: the bundled street clip, bikes.mp4, scaled to 1280×720 and looped to 30 s).") var input: String?
    @Option(help: "Runs of each (alternating); the best counts.") var runs: Int = 2

    /// The nodes this issue added in front of the labels node, and the edge that replaces them.
    static let added = ["motion", "people", "faces", "tracks"]

    func run() throws {
        if input == nil { _ = try BenchDeltaCommand.sample("bikes.mp4") }
        let clip = try input ?? benchClip("understand-720p-30s.mp4", from: "bikes.mp4", encoding: ["-stream_loop", "2"],
                                          input: ["-t", "30", "-vf", "scale=1280:720"], hint: ", or pass --input")
        let now = try String(contentsOfFile: repositoryFile("Pipelines/understand.yaml"), encoding: .utf8)
        let before = try Self.withoutPeople(now)
        let work = NSTemporaryDirectory() + "sightline-bench-understand-\(getpid())"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let beforePath = work + "/understand-before.yaml"
        try before.write(toFile: beforePath, atomically: true, encoding: .utf8)
        // Both read the shipped policy (the copy's folder has none beside it).
        let policy = repositoryFile("Pipelines/moderation-policy.yaml")
        print("sightline bench understand — \(clip); before = understand.yaml without \(Self.added.joined(separator: ", ")) and with labels.crops=0, labels.hedge=0, ocr.filter=false")
        var times: [String: [Double]] = [:]
        var frames = 0
        for run in 0..<runs {
            for (name, path, extra) in [("before", beforePath, ["--set", "labels.crops=0", "--set", "labels.hedge=0", "--set", "ocr.filter=false"]),
                                        ("now", repositoryFile("Pipelines/understand.yaml"), [])] {
                let out = work + "/\(name).jsonl"
                let started = monotonicSeconds()
                _ = try runTool(ownExecutable(), ["run", path, "--input", clip, "--set", "file.path=\(out)",
                                                  "--set", "out.endpoint=pub+bind:tcp://127.0.0.1:\(BenchBatchCommand.freeTCPPort())",
                                                  "--set", "captions.policy=\(policy)", "--set", "moderation.policy=\(policy)",
                                                  "--quiet", "--progress", "off"] + extra)
                times[name, default: []].append(monotonicSeconds() - started)
                frames = (try? String(contentsOfFile: out, encoding: .utf8))?.split(separator: "\n").filter { $0.contains("\"topic\":\"nsfw/") }.count ?? 0
                print(String(format: "  run %d %@: %.2f s", run + 1, name, times[name]?.last ?? 0))
            }
        }
        let b = times["before"]?.min() ?? .nan, n = times["now"]?.min() ?? .nan
        let perFrame = { (t: Double) in frames > 0 ? t / Double(frames) * 1000 : .nan }
        print(String(format: "per frame (%d frames): before %.0f ms, now %.0f ms, ratio %.2f %@", frames, perFrame(b), perFrame(n), n / b,
                     n / b <= 1.3 ? "(target ≤ 1.3 met)" : "(target 1.3 not met)"))
    }

    /// understand.yaml with the added nodes cut out: their node blocks dropped and the chain
    /// shots -> … -> labels joined again.
    static func withoutPeople(_ yaml: String) throws -> String {
        var lines: [String] = []
        var skipping = false
        for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("  ") && !line.hasPrefix("    ") && trimmed.hasSuffix(":") {
                skipping = added.contains(String(trimmed.dropLast()))
            } else if !line.hasPrefix(" ") {
                skipping = false
            }
            if skipping { continue }
            if trimmed.hasPrefix("- "), added.contains(where: { trimmed.contains("-> \($0)") || trimmed.hasPrefix("- \($0) ") }) {
                if trimmed == "- shots -> motion" { lines.append("  - shots -> labels") }
                continue
            }
            lines.append(String(line))
        }
        let result = lines.joined(separator: "\n")
        guard result.contains("  - shots -> labels"), !added.contains(where: { result.contains("  \($0):\n") }) else {
            throw ValidationError("Pipelines/understand.yaml no longer has the shape this benchmark edits (shots -> motion -> … -> labels)")
        }
        return result
    }
}
