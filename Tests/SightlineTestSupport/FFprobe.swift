import Foundation

/// One frame as ffprobe reports it.
public struct ProbedFrame: Sendable, Equatable {
    public var pts: Int64?
    public var bestEffort: Int64?
    public var bestEffortTime: Double?
    public var isKey: Bool
}

public enum FFprobe {
    /// Every decoded video frame of the first video stream, in output order.
    public static func frames(_ path: String, extra: [String] = []) throws -> [ProbedFrame] {
        let result = try Tool.run("ffprobe", ["-v", "error"] + extra + [
            "-select_streams", "v:0", "-show_frames",
            "-show_entries", "frame=pts,best_effort_timestamp,best_effort_timestamp_time,key_frame",
            "-of", "json", path,
        ])
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let frames = object?["frames"] as? [[String: Any]] ?? []
        return frames.map { f in
            ProbedFrame(
                pts: (f["pts"] as? NSNumber)?.int64Value,
                bestEffort: (f["best_effort_timestamp"] as? NSNumber)?.int64Value,
                bestEffortTime: (f["best_effort_timestamp_time"] as? String).flatMap(Double.init),
                isKey: (f["key_frame"] as? NSNumber)?.intValue == 1)
        }
    }
}

/// The CLI under test: next to the test bundle in the build folder, or $SIGHTLINE_BIN.
public func sightlineBinary() -> String {
    if let path = ProcessInfo.processInfo.environment["SIGHTLINE_BIN"] { return path }
    let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var dir = executable.deletingLastPathComponent()
    // On Linux the runner is .build/<triple>/debug/SightlinePackageTests.xctest.
    for _ in 0..<3 {
        let candidate = dir.appendingPathComponent("sightline").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return ".build/debug/sightline"
}

/// The repository checkout the tests were built from (Pipelines/, Samples/, Scripts/).
public let repositoryRoot: String = {
    var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()  // Tests/SightlineTestSupport
    for _ in 0..<2 { dir = dir.deletingLastPathComponent() }
    return dir.path
}()
