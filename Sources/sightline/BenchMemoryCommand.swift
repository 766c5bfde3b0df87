import ArgumentParser
import Foundation
import SightlineCore

/// `sightline bench memory`: Pipelines/batch.yaml on one long file, with the pipeline process's
/// resident memory sampled as it runs. A batch job must stay within 500 MB whatever the
/// file's length, so what matters is the peak and whether it keeps rising: anything held per
/// shot or per file grows with the file, which a 30 s clip hides.
struct BenchMemoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory",
        abstract: "Pipelines/batch.yaml on one long file (the 30 s batch bench clip repeated to --minutes): resident memory over the run, its peak and its growth (targets: peak ≤ 500 MB whatever the length, flat).")

    @Option(help: "Minutes of video: the 30 s bench clip repeated, stream-copied (made once and cached; an hour is about 1 GB).")
    var minutes: Int = 10
    @Option(help: "A video of your own instead of the repeated clip.") var input: String?
    @Option(help: "Seconds between memory samples.") var every: Double = 5

    static let targetMegabytes = 500.0
    /// Growth after loading that still counts as flat.
    static let flatPercent = 5.0
    /// Seconds after which the models are loaded and the first frames through: growth counts from here.
    static let settledAfter = 20.0

    func validate() throws {
        guard (1...600).contains(minutes) else { throw ValidationError("--minutes must be 1…600") }
        guard every >= 0.5, every <= 600 else { throw ValidationError("--every must be 0.5…600 seconds") }
        if let input, !FileManager.default.fileExists(atPath: input) { throw ValidationError("no file at '\(input)'") }
    }

    func run() throws {
        let video = try input ?? Self.longClip(minutes: minutes)
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("sightline-bench-memory-\(getpid())").path
        try? FileManager.default.removeItem(atPath: output)
        defer { try? FileManager.default.removeItem(atPath: output) }
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let log = output + "-log.txt"
        defer { try? FileManager.default.removeItem(atPath: log) }
        guard FileManager.default.createFile(atPath: log, contents: nil) else { throw ValidationError("cannot write \(log)") }

        print("sightline bench memory — Pipelines/batch.yaml on \(input == nil ? "the bench clip repeated to \(minutes) min" : video), RSS every \(every) s")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ownExecutable())
        process.arguments = ["run", repositoryFile("Pipelines/batch.yaml"), "--input", video, "--output", output]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        let started = Date()
        try process.run()
        print(pad("time s", 9) + "RSS MB")
        var samples: [(time: Double, megabytes: Double)] = []
        var nextLine = 15.0
        while process.isRunning {
            let elapsed = Date().timeIntervalSince(started)
            let megabytes = BenchLiveCommand.residentMegabytes(pid: process.processIdentifier)
            if megabytes > 0 { samples.append((elapsed, megabytes)) }
            if elapsed >= nextLine, megabytes > 0 {
                print(pad(String(format: "%.0f", elapsed), 9) + String(format: "%.0f", megabytes))
                nextLine += 15
            }
            Thread.sleep(forTimeInterval: every)
        }
        process.waitUntilExit()
        let wall = Date().timeIntervalSince(started)
        guard process.terminationStatus == 0 else {
            let tail = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").suffix(10).joined(separator: "\n") ?? ""
            throw ValidationError("the batch pipeline failed (exit \(process.terminationStatus)):\n\(tail)")
        }
        // The kernel's high-water mark for the (only) child: the peak between samples too.
        var usage = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &usage)
        let peak = max(Double(usage.ru_maxrss) / 1024, samples.map(\.megabytes).max() ?? 0)
        let cpu = childrenCPUSeconds().user
        print(String(format: "run: %.0f s wall, %.0f s user CPU", wall, cpu))
        print(String(format: "peak: %.0f MB (target ≤ %.0f) — %@", peak, Self.targetMegabytes, peak <= Self.targetMegabytes ? "met" : "NOT met"))
        // From the first sample after loading to the end.
        if let first = samples.first(where: { $0.time >= Self.settledAfter }), let last = samples.last, last.time > first.time {
            let growth = (last.megabytes - first.megabytes) / first.megabytes * 100
            print(String(format: "after loading: %.0f MB at %.0f s, %.0f MB at %.0f s (%+.1f%%) — %@", first.megabytes, first.time, last.megabytes, last.time,
                         growth, growth <= Self.flatPercent ? "flat (≤ +\(Int(Self.flatPercent)) %)" : "NOT flat (more than +\(Int(Self.flatPercent)) %)"))
        } else {
            print("after loading: the run ended within \(Int(Self.settledAfter)) s; no growth measured (use more --minutes)")
        }
    }

    /// The batch bench clip repeated to `minutes` (stream copy: no re-encoding), cached.
    static func longClip(minutes: Int) throws -> String {
        let clip = try BenchBatchCommand.defaultClip()
        return try cachedBenchMedia("batch-720p-\(minutes)min.mp4") { partial in
            _ = try runTool(try findExecutable("ffmpeg"), ["-v", "error", "-y", "-stream_loop", "\(minutes * 2 - 1)", "-i", clip,
                                                          "-map", "0:v:0", "-c", "copy", partial])
        }
    }
}
