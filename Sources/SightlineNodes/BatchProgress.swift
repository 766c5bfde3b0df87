import Foundation
import SightlineCore

/// How far a batch job is: the `files` source's plan (files and their durations), against
/// what the sinks have written (media time reached, files ended). Pure: the CLI renders it.
public struct BatchProgress: Sendable {
    public struct File: Sendable, Equatable {
        public var source: String
        public var duration: Double?
        public var skip: Bool

        public init(source: String, duration: Double?, skip: Bool) {
            self.source = source
            self.duration = duration
            self.skip = skip
        }
    }

    public struct Estimate: Sendable, Equatable {
        /// 0…1 of the media time to process.
        public var fraction: Double
        /// Files finished and written (failed ones are not done).
        public var filesDone: Int
        /// Files that ended with an error (their share of the work is over, but not done).
        public var filesFailed: Int = 0
        public var filesToProcess: Int
        public var skipped: Int
        public var current: String?
        public var etaSeconds: Double?
    }

    public let files: [File]

    public init(files: [File]) {
        self.files = files
    }

    /// From the `started` status a `files` source posts; nil for any other status.
    public init?(startedStatus status: StatusEvent) {
        guard case .batchStarted(let plan) = status.detail else { return nil }
        files = plan.entries.map { File(source: $0.source, duration: $0.duration, skip: $0.skip) }
    }

    public func estimate(delivered: [String: (seconds: Double, ended: Bool)], failed: Set<String> = [], elapsed: Double) -> Estimate {
        let work = files.filter { !$0.skip }
        let known = work.compactMap(\.duration).filter { $0 > 0 }
        // A file whose length could not be read counts as an average one.
        let typical = known.isEmpty ? 1 : known.reduce(0, +) / Double(known.count)
        var total = 0.0
        var done = 0.0
        var filesDone = 0, filesFailed = 0
        var current: String?
        for file in work {
            let length = file.duration.flatMap { $0 > 0 ? $0 : nil } ?? typical
            total += length
            if failed.contains(file.source) {
                done += length
                filesFailed += 1
            } else if let reached = delivered[file.source] {
                if reached.ended {
                    done += length
                    filesDone += 1
                } else {
                    done += min(max(reached.seconds, 0), length)
                    current = file.source
                }
            }
        }
        let fraction = total > 0 ? min(done / total, 1) : 1
        let eta: Double? = fraction >= 0.005 && fraction < 1 ? elapsed * (1 - fraction) / fraction : (fraction >= 1 ? 0 : nil)
        return Estimate(fraction: fraction, filesDone: filesDone, filesFailed: filesFailed, filesToProcess: work.count,
                        skipped: files.count - work.count, current: current, etaSeconds: eta)
    }

    /// `[#########-----------]  45%  3/8 files (2 already done)  clip.mp4  ETA 1m05s`
    public static func render(_ e: Estimate, width: Int = 24) -> String {
        let filled = Int((e.fraction * Double(width)).rounded(.down))
        var line = "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]"
        line += String(format: " %3d%%  %d/%d files", Int((e.fraction * 100).rounded(.down)), e.filesDone, e.filesToProcess)
        var notes: [String] = []
        if e.filesFailed > 0 { notes.append("\(e.filesFailed) failed") }
        if e.skipped > 0 { notes.append("\(e.skipped) already done") }
        if !notes.isEmpty { line += " (" + notes.joined(separator: ", ") + ")" }
        if let current = e.current { line += "  " + (current.split(separator: "/", maxSplits: 1).last.map(String.init) ?? current) }
        line += "  ETA " + (e.etaSeconds.map(duration) ?? "…")
        return line
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
        if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
        return "\(s)s"
    }
}
