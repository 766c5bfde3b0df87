import ArgumentParser
import Foundation
import SightlineCore
import SightlineNodes

/// `sightline bench moderation`: false flags on benign footage. Pipelines/moderation.yaml runs
/// on the sample clips — none shows nudity, weapons or alcohol — with the shipped policy and
/// with the same policy stripped of corroboration and presence requirements, in the same run;
/// every flag_start is a false flag.
struct BenchModerationCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "moderation",
        abstract: "False flags on benign sample clips: the shipped policy vs the same without corroborate/requires.")

    @Option(parsing: .upToNextOption, help: "Benign clips (sample names Scripts/fetch-sample knows, or paths).")
    var clips: [String] = ["bikes.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4", "vtest.avi", "tree.avi", "Megamind.avi"]

    @Option(parsing: .upToNextOption, help: "Benign photos, each run as a one-frame input (names in the sample photo cache, or paths).")
    var photos: [String] = ["rocket.jpg", "astronaut.png", "grace_hopper.jpg", "chelsea.png", "coffee.png", "camera.png", "china.jpg",
                            "motorcycle_left.png", "clock_motion.png", "flower.jpg", "horse.png"]

    func run() throws {
        let shipped = ModerationPolicy.builtInText
        // The same thresholds without the new requirements: what the policy did before them.
        let plain = shipped.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("corroborate:") && !$0.trimmingCharacters(in: .whitespaces).hasPrefix("requires:") }
            .joined(separator: "\n")
        let work = NSTemporaryDirectory() + "sightline-bench-moderation-\(getpid())"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        try shipped.write(toFile: work + "/shipped.yaml", atomically: true, encoding: .utf8)
        try plain.write(toFile: work + "/plain.yaml", atomically: true, encoding: .utf8)
        // Pipelines/moderation.yaml as shipped, plus a JSONL sink to count the flags from.
        let shippedPipeline = try String(contentsOfFile: repositoryFile("Pipelines/moderation.yaml"), encoding: .utf8)
        guard shippedPipeline.contains("\nedges:"), shippedPipeline.contains("  - moderation -> out\n") else {
            throw ValidationError("Pipelines/moderation.yaml no longer has the shape this benchmark extends (nodes, edges, moderation -> out)")
        }
        let pipeline = work + "/moderation.yaml"
        try shippedPipeline.replacingOccurrences(of: "\nedges:", with: "  flags:\n    type: jsonl\n    path: flags.jsonl\n\nedges:")
            .replacingOccurrences(of: "  - moderation -> out\n", with: "  - moderation -> out, flags\n")
            .write(toFile: pipeline, atomically: true, encoding: .utf8)
        print("sightline bench moderation — Pipelines/moderation.yaml on benign clips; every flag_start is a false flag")
        print(pad("clip", 26) + pad("plain policy", 40) + "shipped policy")
        var totals = (plain: 0, shipped: 0)
        // The photos come from pinned wheels; the test suite fetches them into the cache.
        let photoDir = cacheRoot() + "/samples/photos/"
        var inputs: [String] = []
        for clip in clips { inputs.append(FileManager.default.fileExists(atPath: clip) ? clip : try BenchDeltaCommand.sample(clip)) }
        for photo in photos {
            let path = FileManager.default.fileExists(atPath: photo) ? photo : photoDir + photo
            if FileManager.default.fileExists(atPath: path) { inputs.append(path) } else { print("  skipped \(photo): not in \(photoDir) (Scripts/test fetches the sample photos)") }
        }
        for path in inputs {
            let clip = (path as NSString).lastPathComponent
            var row: [String] = []
            for policy in ["plain", "shipped"] {
                let out = work + "/\(policy).jsonl"
                try? FileManager.default.removeItem(atPath: out)
                _ = try runTool(ownExecutable(), ["run", pipeline, "--input", path, "--set", "moderation.policy=\(work)/\(policy).yaml",
                                                  "--set", "out.endpoint=pub+bind:tcp://127.0.0.1:\(BenchBatchCommand.freeTCPPort())",
                                                  "--set", "flags.path=\(out)", "--quiet", "--progress", "off"])
                let flags = (try? String(contentsOfFile: out, encoding: .utf8))?.split(separator: "\n").compactMap { line -> String? in
                    guard let value = JSONValue.parse(String(line)), value["topic"]?.stringValue?.hasPrefix("moderation/") == true,
                          value["header"]?["data"]?["event"]?.stringValue == "flag_start" else { return nil }
                    return value["header"]?["data"]?["category"]?.stringValue
                } ?? []
                if policy == "plain" { totals.plain += flags.count } else { totals.shipped += flags.count }
                row.append("\(flags.count)" + (flags.isEmpty ? "" : " (" + flags.joined(separator: ", ") + ")"))
            }
            print(pad(clip, 26) + pad(row[0], 40) + row[1])
        }
        print("false flags: plain policy \(totals.plain), shipped policy \(totals.shipped)")
    }
}
