import Foundation
import SightlineCore

/// What makes a batch resumable: the pipeline's output folder holds a journal
/// (`sightline-done.jsonl`, one line per finished input file: path, size, mtime, and where its
/// output is), and outputs are written complete or not at all (`SourceOutputFiles`). A re-run
/// skips inputs the journal lists unchanged with their output present, and redoes the rest — an
/// interrupted file's partial output is simply overwritten. The journal always lives in the
/// output folder, so results and journal cannot drift apart.
public struct BatchJournal: Sendable {
    public struct Entry: Codable, Sendable, Equatable {
        public var source: String
        public var path: String
        public var size: Int64
        public var mtime: Double
        /// The finished output: relative to the journal's folder, or absolute when outside it.
        public var output: String
        public var finished: Double
        /// The pipeline's results hash when it was done (nil in journals from before it was kept).
        public var pipeline: String?
    }

    public static let fileName = "sightline-done.jsonl"
    public let directory: URL

    public init(directory: String) {
        self.directory = URL(fileURLWithPath: directory, isDirectory: true)
    }

    /// How an entry names `output`: relative when it lies inside the journal's folder.
    public func reference(to output: URL) -> String {
        let folder = directory.standardizedFileURL.path + "/"
        let path = output.standardizedFileURL.path
        return path.hasPrefix(folder) ? String(path.dropFirst(folder.count)) : path
    }

    /// Finished entries by input path (the last line for a path wins). Lines cut short by a
    /// kill are ignored: that file simply counts as not finished.
    public func entries() -> [String: Entry] {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent(Self.fileName)) else { return [:] }
        var result: [String: Entry] = [:]
        for line in data.split(separator: UInt8(ascii: "\n")) {
            if let entry = try? JSONDecoder().decode(Entry.self, from: Data(line)) { result[entry.path] = entry }
        }
        return result
    }

    /// Whether `path` was finished by an earlier run with the same settings (`resultsHash`) and
    /// has not changed since. Other settings redo it: the old output is not what this run makes.
    public func isFinished(path: String, identity: FileIdentity?, entries: [String: Entry], resultsHash: String) -> Bool {
        guard let identity, let entry = entries[path], entry.size == identity.size, entry.mtime == identity.mtime,
              entry.pipeline == resultsHash else { return false }
        let output = entry.output.hasPrefix("/") ? entry.output : directory.appendingPathComponent(entry.output).path
        return FileManager.default.fileExists(atPath: output)
    }

    /// Drops the entries of `paths`, so a resumed run redoes those files. The journal is
    /// rewritten to a temporary file and renamed over the old one: a kill leaves one or the other.
    public func forget(paths: Set<String>) throws {
        let url = directory.appendingPathComponent(Self.fileName)
        guard !paths.isEmpty, let data = try? Data(contentsOf: url) else { return }
        var kept = Data()
        for line in data.split(separator: UInt8(ascii: "\n")) {
            if let entry = try? JSONDecoder().decode(Entry.self, from: Data(line)), paths.contains(entry.path) { continue }
            kept.append(contentsOf: line)
            kept.append(UInt8(ascii: "\n"))
        }
        let temporary = directory.appendingPathComponent(Self.fileName + ".rewrite")
        try kept.write(to: temporary)
        guard rename(temporary.path, url.path) == 0 else {
            throw SightlineError.cannotOpen(input: url.path, reason: "cannot replace the journal: \(String(cString: strerror(errno)))")
        }
    }

    /// Records a finished file: one line, one write, synced.
    public func append(_ entry: Entry) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = directory.appendingPathComponent(Self.fileName)
        if !FileManager.default.fileExists(atPath: url.path) { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        try handle.seekToEnd()
        var line = try JSONEncoder().encode(entry)
        line.append(UInt8(ascii: "\n"))
        try handle.write(contentsOf: line)
        try handle.synchronize()
    }
}

/// One output file per source in a folder, each written as `NAME.jsonl.partial` and renamed to
/// `NAME.jsonl` only when its source ended cleanly: a file under its final name is complete.
public struct SourceOutputFiles: Sendable {
    public let folder: URL

    public init(folder: String) {
        self.folder = URL(fileURLWithPath: folder, isDirectory: true)
    }

    /// The output file for a source id: the file part of `NODE/FILE`, or the id itself.
    public static func outputName(forSource source: String) -> String {
        let name = source.split(separator: "/", maxSplits: 1).dropFirst().first.map(String.init) ?? source
        return name + ".jsonl"
    }

    public func outputURL(forSource source: String) -> URL {
        folder.appendingPathComponent(Self.outputName(forSource: source))
    }

    /// Where a source's output is written until it is complete.
    public func partialURL(forSource source: String) -> URL {
        folder.appendingPathComponent(Self.outputName(forSource: source) + ".partial")
    }

    /// The source's output is complete: its partial file takes the final name, replacing an
    /// older one in one atomic rename(2) — never remove-then-move, which left a moment (or, after
    /// a crash, a state) with no output at all. Returns the final URL.
    @discardableResult
    public func commitOutput(forSource source: String) throws -> URL {
        let final = outputURL(forSource: source)
        let partial = partialURL(forSource: source)
        guard rename(partial.path, final.path) == 0 else {
            let reason = String(cString: strerror(errno))
            throw SightlineError.cannotOpen(input: final.path, reason: "cannot rename the finished output into place: \(reason)")
        }
        return final
    }
}

/// Size and modification time: enough to notice an input file was replaced.
public struct FileIdentity: Sendable, Equatable {
    public var size: Int64
    public var mtime: Double

    public init(size: Int64, mtime: Double) {
        self.size = size
        self.mtime = mtime
    }

    public init?(path: String) {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let size = (attributes[.size] as? NSNumber)?.int64Value,
              let date = attributes[.modificationDate] as? Date else { return nil }
        self.size = size
        self.mtime = (date.timeIntervalSince1970 * 1000).rounded() / 1000
    }
}
