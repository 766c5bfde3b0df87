import Foundation
import SightlineCore
import SightlineGraph
import SightlineMedia
import Synchronization

/// `files`: a batch job's source — every video in a folder (or listed in a text file), one
/// after the other. Each file is a source of its own, `NODE/FILE`, so every node keeps and ends
/// its per-source state per file and each file gets its own end-of-stream. With `resume`, files
/// a previous run finished (see `BatchJournal`) are skipped and interrupted ones redone.
public final class FilesSourceNode: SourceProcessor, @unchecked Sendable {
    public let sourceID: String
    private let options: NodeOptions
    private let cancelled = Atomic<Bool>(false)
    private let current = Mutex<SourceCancellation?>(nil)

    public static let defaultExtensions = "mp4,m4v,mov,mkv,webm,avi,ts,mts,m2ts,mpg,mpeg,flv,wmv,3gp,ogv,h264,h265,hevc,y4m"

    public static let descriptor = NodeDescriptor(
        name: "files",
        description: "Batch source: every video in a folder (recursively) or listed in a text file, each as source NODE/FILE; resumable.",
        role: .source, inputs: nil, outputs: .frames,
        options: [
            OptionSpec("url", .media, required: true, help: "a folder, a text file with one path per line (# comments), or one video file"),
            OptionSpec("extensions", .string, default: .string(defaultExtensions), help: "file name extensions taken from a folder (comma-separated)"),
            OptionSpec("resume", .bool, default: .bool(false),
                       help: "skip files the output folder's journal (sightline-done.jsonl, written by a jsonl sink with `dir`) lists as finished and unchanged; choose the folder with --output DIR"),
        ] + VideoSourceNode.decodeOptions)

    public static let factory = NodeFactory(descriptor: descriptor) { id, options in
        .source(try FilesSourceNode(id: id, options: options))
    }

    init(id: String, options: NodeOptions) throws {
        try VideoSourceNode.checkSampling(options)
        sourceID = id
        self.options = options
    }

    public func cancel() {
        cancelled.store(true, ordering: .relaxed)
        current.withLock { $0?.cancel() }
    }

    /// One input file and what this run does with it.
    struct PlannedFile {
        var path: String
        var source: String
        var identity: FileIdentity?
        var duration: Double?
        var skip: Bool
    }

    public func run(context: any NodeContext, emit: (Item) -> FlowResult) throws -> EndOfStream {
        let paths = try Self.inputFiles(options.string("url") ?? "", extensions: options.string("extensions") ?? Self.defaultExtensions)
        let names = Self.uniqueNames(paths, relativeTo: Self.baseFolder(options.string("url") ?? ""))
        let journal = options.bool("resume") == true ? BatchJournal(directory: options.outputDirectory) : nil
        let finished = journal?.entries() ?? [:]
        let plan = zip(paths, names).map { path, name -> PlannedFile in
            let identity = FileIdentity(path: path)
            let skip = journal?.isFinished(path: path, identity: identity, entries: finished, resultsHash: context.resultsHash) ?? false
            let duration = skip ? nil : (try? MediaProbe.probe(url: path, timeout: 10))?.durationSeconds
            return PlannedFile(path: path, source: "\(sourceID)/\(name)", identity: identity, duration: duration, skip: skip)
        }
        let toDo = plan.filter { !$0.skip }
        let batchPlan = BatchPlan(entries: plan.map { .init(source: $0.source, path: $0.path, skip: $0.skip, duration: $0.duration) })
        context.post(StatusEvent(.batchStarted(batchPlan), sourceID: sourceID, wallClock: context.clock.now()))

        var processed = 0
        var failed = 0
        for (index, file) in toDo.enumerated() {
            if cancelled.load(ordering: .relaxed) { break }
            let video = VideoSource(url: file.path, options: VideoSourceNode.sourceOptions(sourceID: file.source, url: file.path, options: options))
            current.withLock { $0 = video.cancellation }
            let batchFile = BatchFile(path: file.path, index: index + 1, count: toDo.count, size: file.identity?.size, mtime: file.identity?.mtime)
            let sha256 = VideoSourceNode.contentHash(file.path)
            var end = EndOfStream(sourceID: file.source, batchFile: batchFile, sha256: sha256)
            do {
                let stats = try VideoSourceNode.pump(video, sourceID: file.source, context: context, sha256: sha256, batchFile: batchFile, emit: emit)
                end.decoder = stats
                let completed = !video.cancellation.isCancelled && !cancelled.load(ordering: .relaxed)
                if completed && stats.framesDecoded == 0 {
                    // A file that opens but yields no picture (a damaged moov, a cut-off mdat)
                    // is a failure: not journaled, so the next run tries it again.
                    throw SightlineError.cannotOpen(input: file.path, reason: "no video frame could be decoded (\(stats.corruptPackets) corrupt packets, \(stats.readErrors) read errors): damaged or empty")
                }
                end.completed = completed
                if completed { processed += 1 }
            } catch {
                failed += 1
                end.completed = false
                end.error = "\(error)"
                context.post(StatusEvent(.error(NodeFailure(node: sourceID, message: "\(error)", fatal: true, path: file.path)),
                                         sourceID: file.source, wallClock: context.clock.now()))
            }
            current.withLock { $0 = nil }
            if emit(.endOfStream(end)) == .flushing { break }
        }
        return EndOfStream(sourceID: sourceID, batch: BatchTotals(files: plan.count, processed: processed, failed: failed, skipped: plan.count - toDo.count),
                           completed: !cancelled.load(ordering: .relaxed))
    }

    /// The videos a batch input names, sorted, as absolute paths.
    public static func inputFiles(_ input: String, extensions: String) throws -> [String] {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard !input.isEmpty, fm.fileExists(atPath: input, isDirectory: &isDirectory) else {
            throw SightlineError.cannotOpen(input: input, reason: "no such file or folder")
        }
        let base = URL(fileURLWithPath: input)
        if isDirectory.boolValue {
            let wanted = Set(extensions.lowercased().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            let files = try videos(under: base.standardizedFileURL, wanted: wanted)
            guard !files.isEmpty else {
                throw SightlineError.cannotOpen(input: input, reason: "the folder holds no video files (extensions: \(extensions))")
            }
            return files
        }
        if ["txt", "list", "lst"].contains(base.pathExtension.lowercased()) {
            let text = try String(contentsOf: base, encoding: .utf8)
            let folder = base.deletingLastPathComponent()
            var files: [String] = []
            for raw in text.split(whereSeparator: \.isNewline) {
                let line = raw.trimmingCharacters(in: .whitespaces)
                guard !line.isEmpty, !line.hasPrefix("#") else { continue }
                let url = line.hasPrefix("/") ? URL(fileURLWithPath: line) : folder.appendingPathComponent(line)
                guard fm.fileExists(atPath: url.path) else {
                    throw SightlineError.cannotOpen(input: line, reason: "listed in \(input) but not found")
                }
                files.append(url.standardizedFileURL.path)
            }
            guard !files.isEmpty else { throw SightlineError.cannotOpen(input: input, reason: "the list names no files") }
            return files
        }
        return [base.standardizedFileURL.path]
    }

    /// Every video under `folder`, sorted by path, following symbolic links — a media library
    /// often links its files or folders in — but taking each real file once (by its resolved
    /// path) and entering each real folder once, so a link back up the tree cannot loop.
    /// Hidden files and folders are skipped.
    static func videos(under folder: URL, wanted: Set<String>) throws -> [String] {
        let fm = FileManager.default
        var seenFiles = Set<String>(), seenFolders = Set<String>()
        var found: [String] = []
        // Breadth first, and in each folder real entries before links: a file reached both
        // directly and through a link keeps its own name.
        var pending = [folder]
        while !pending.isEmpty {
            let current = pending.removeFirst()
            guard seenFolders.insert(current.resolvingSymlinksInPath().path).inserted else { continue }
            guard let names = try? fm.contentsOfDirectory(atPath: current.path) else {
                if current == folder { throw SightlineError.cannotOpen(input: folder.path, reason: "cannot list the folder") }
                continue
            }
            let entries = names.filter { !$0.hasPrefix(".") }.sorted().map { current.appendingPathComponent($0) }
            let isLink = { (url: URL) in (try? fm.destinationOfSymbolicLink(atPath: url.path)) != nil }
            var folders: [URL] = []
            for url in entries.filter({ !isLink($0) }) + entries.filter(isLink) {
                let real = url.resolvingSymlinksInPath()
                var isDirectory: ObjCBool = false
                guard fm.fileExists(atPath: real.path, isDirectory: &isDirectory) else { continue }  // a dangling link
                if isDirectory.boolValue {
                    folders.append(url)
                } else if wanted.contains(url.pathExtension.lowercased()), seenFiles.insert(real.path).inserted {
                    found.append(url.standardizedFileURL.path)
                }
            }
            pending += folders
        }
        return found.sorted()
    }

    /// The folder names are taken relative to: the input folder, or a list's folder.
    public static func baseFolder(_ input: String) -> String? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory) else { return nil }
        let url = URL(fileURLWithPath: input).standardizedFileURL
        return isDirectory.boolValue ? url.path : url.deletingLastPathComponent().path
    }

    /// Topic-safe, unique names that mirror each file's path under `base` (`season/ep1.mp4`),
    /// so same-named files in different folders never share an output or a journal line;
    /// a file outside `base` is named by its file name alone. Each path component has anything
    /// but letters, digits, `.`, `_` and `-` replaced by `_`; a name still repeated (two
    /// inputs that differ only in such characters) gets `~2`, `~3`, … in list order.
    public static func uniqueNames(_ paths: [String], relativeTo base: String? = nil) -> [String] {
        var seen: [String: Int] = [:]
        let prefix = base.map { $0.hasSuffix("/") ? $0 : $0 + "/" }
        return paths.map { path in
            let relative = prefix.flatMap { path.hasPrefix($0) ? String(path.dropFirst($0.count)) : nil } ?? URL(fileURLWithPath: path).lastPathComponent
            let safe = relative.split(separator: "/").map { component in
                String(component.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
                    .replacingOccurrences(of: "..", with: "__")
            }.joined(separator: "/")
            seen[safe, default: 0] += 1
            let count = seen[safe] ?? 1
            return count == 1 ? safe : "\(safe)~\(count)"
        }
    }
}
