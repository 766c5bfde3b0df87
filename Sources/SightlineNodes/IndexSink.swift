import Foundation
import SightlineCore
import SightlineGraph
import SightlineIndex
import SightlineMedia

/// `index`: writes what the pipeline found into the searchable results index
/// (`sightline-index.sqlite` in the output folder, SQLite in WAL mode), with one JPEG
/// thumbnail per shot beside it, for `sightline search`.
///
/// Both kinds of source are written shot by shot (each shot once the next one has begun, when
/// its caption and flags are in), so memory does not grow with a file's length. A live source
/// goes straight into the index, keeping only the last `retention` seconds. A batch file goes
/// into a staging index (`staging/` in the index folder) and moves into the index in one
/// transaction when it has been read to its end: re-running a file replaces its rows, and a
/// run cut short leaves the previous rows as they were.
public final class IndexSink: NodeProcessor {
    private let store: IndexStore
    private let thumbnails: Bool
    private let retention: Double?
    private var sources: [String: SourceState] = [:]
    private lazy var encoder = JPEGEncoder(maxWidth: 320)
    /// Names this run's thumbnail folders, so a re-run never overwrites the pictures the
    /// index still points at before its own transaction has landed.
    private let runToken = String(Int64(Date().timeIntervalSince1970 * 1000), radix: 36)

    private final class SourceState {
        var builder: IndexDocumentBuilder
        var frames = RepresentativeFrames<SmallFrame>(capacity: 16)
        var live: Bool
        /// Thumbnails written for a live source, to delete when retention drops their shots.
        var liveThumbnails: [(end: Double, path: String)] = []
        /// A batch file's rows so far (opened with its first finished shot).
        var staged: IndexStore?
        init(builder: IndexDocumentBuilder, live: Bool) {
            self.builder = builder
            self.live = live
        }
    }

    private struct SmallFrame {
        var pixels: [UInt8]
        var width: Int
        var height: Int
        var format: PixelFormat
    }

    public static let descriptor = NodeDescriptor(
        name: "index",
        description: "Write shots, captions, labels, text, people, tracks, flags and shot vectors into the search index (sightline-index.sqlite) for `sightline search`.",
        role: .sink, inputs: .any, outputs: nil,
        options: [
            OptionSpec("dir", .outputPath, help: "the index folder, relative to the output folder (default: the output folder itself)"),
            OptionSpec("thumbnails", .bool, default: .bool(true), help: "write one JPEG per shot (at most 320 px wide) into the index folder's thumbnails/"),
            OptionSpec("retention", .double, min: 1, help: "live sources: keep only this many seconds of each source's most recent media time (default: keep everything)"),
        ])

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        let sink = try IndexSink(folder: options.string("dir") ?? options.outputDirectory, thumbnails: options.bool("thumbnails") ?? true,
                                 retention: options.double("retention"))
        try sink.forgetJournaledFilesNotIndexed(outputDirectory: options.outputDirectory)
        return .processor(sink)
    }

    /// The batch journal (written by the jsonl sink) and this index finish a file separately,
    /// so a kill between the two can leave a file journaled as done but not indexed; a resumed
    /// run would skip it and the index would never hold it. Before the run starts (node
    /// factories run before any source), such files are taken out of the journal, so `resume`
    /// redoes them.
    func forgetJournaledFilesNotIndexed(outputDirectory: String) throws {
        let journal = BatchJournal(directory: outputDirectory)
        let entries = journal.entries()
        guard !entries.isEmpty else { return }
        let missing = Set(entries.keys).subtracting(try store.indexedLocations())
        try journal.forget(paths: missing)
    }

    public init(folder: String, thumbnails: Bool, retention: Double?) throws {
        do {
            store = try IndexStore(folder: folder)
        } catch {
            throw SightlineError.cannotOpen(input: folder, reason: "cannot open the results index: \(error)")
        }
        self.thumbnails = thumbnails
        self.retention = retention
        removeStagingOfDeadRuns()
    }

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        switch item {
        case .status(let status):
            guard case .started(let opened) = status.detail, let source = status.sourceID else { return }
            let state = state(for: source, context: context)
            state.builder.video.location = opened.batchFile?.path ?? opened.url
            state.builder.video.sha256 = opened.sha256
            state.live = opened.batchFile == nil && !source.contains("/")
            state.builder.video.live = state.live
        case .frame(let frame):
            guard thumbnails else { return }
            let state = state(for: frame.sourceID, context: context)
            guard state.frames.wants(frame.seconds) else { return }
            let small = try encoder.downscale(frame.pixels, width: frame.width, height: frame.height, format: frame.pixelFormat)
            state.frames.offer(frame.seconds, SmallFrame(pixels: small.pixels, width: small.width, height: small.height, format: frame.pixelFormat))
        case .record(let record):
            let state = state(for: record.sourceID, context: context)
            if case .shot = record.value {
                // The previous shot is complete (its caption and vectors came before this
                // shot's end): write it, and everything seen before this shot began.
                if state.live { try writeLive(state, before: record.start) } else { try writeStaged(state, source: record.sourceID, before: record.start) }
            }
            state.builder.add(record)
            if case .shot(let shot) = record.value, thumbnails, let chosen = state.frames.choose(start: record.start, end: record.end) {
                let path = try writeThumbnail(chosen.payload, source: record.sourceID, shot: shot.index, start: record.start, live: state.live)
                state.builder.setThumbnail(shot: shot.index, path: path, time: chosen.time)
                if state.live { state.liveThumbnails.append((record.end, path)) }
            }
        case .endOfStream(let eos):
            guard let state = sources.removeValue(forKey: eos.sourceID) else { return }
            if state.live {
                try writeLive(state, before: .infinity)
            } else if eos.isComplete {
                // Where the file is and its hash, from the end of stream when its start did not say.
                state.builder.video.sha256 = state.builder.video.sha256 ?? eos.sha256
                if state.builder.video.location.isEmpty { state.builder.video.location = eos.batchFile?.path ?? eos.sourceID }
                let video = try writeStaged(state, source: eos.sourceID, before: .infinity)
                defer { removeStaging(state) }
                if let staged = state.staged { try store.replace(with: staged, video: video) }
                removeThumbnails(of: eos.sourceID, except: runToken)
            } else {
                // Cut short: the index keeps the file's previous rows; this run's pictures go.
                removeStaging(state)
                removeThumbnails(of: eos.sourceID, only: runToken)
            }
        }
    }

    public func close(context: any NodeContext) throws {
        // Sources still open when the graph closes were interrupted: live ones keep what they
        // have written (and write what is finished), batch files keep their previous rows.
        for (source, state) in sources {
            if state.live {
                try writeLive(state, before: .infinity)
            } else {
                removeStaging(state)
                removeThumbnails(of: source, only: runToken)
            }
        }
        sources = [:]
    }

    private func state(for source: String, context: any NodeContext) -> SourceState {
        if let state = sources[source] { return state }
        let video = IndexDocument.Video(source: source, location: "", sha256: nil, duration: 0, live: !source.contains("/"), pipelineHash: context.resultsHash)
        let state = SourceState(builder: IndexDocumentBuilder(video: video), live: !source.contains("/"))
        sources[source] = state
        return state
    }

    private func writeLive(_ state: SourceState, before cutoff: Double) throws {
        let document = state.builder.drain(before: cutoff)
        guard !document.shots.isEmpty || !document.flags.isEmpty || !document.tracks.isEmpty else { return }
        var written = document
        if written.video.location.isEmpty { written.video.location = written.video.source }
        try store.append(written, retention: retention)
        // Pictures of shots the retention window dropped go with their rows.
        if let retention, let newest = state.liveThumbnails.last?.end {
            let expired = state.liveThumbnails.prefix { $0.end < newest - retention }
            for old in expired { try? FileManager.default.removeItem(at: store.folder.appendingPathComponent(old.path)) }
            state.liveThumbnails.removeFirst(expired.count)
        }
    }

    /// Staging folders are `staging/<pid>-<run>-<source>`: one per batch file being indexed.
    static let stagingFolder = "staging"

    /// Writes a batch file's finished shots and the rows before `cutoff` into its staging index;
    /// returns the video row written (its duration so far).
    @discardableResult
    private func writeStaged(_ state: SourceState, source: String, before cutoff: Double) throws -> IndexDocument.Video {
        var document = state.builder.drain(before: cutoff)
        if document.video.location.isEmpty { document.video.location = document.video.source }
        if state.staged == nil {
            let folder = store.folder.appendingPathComponent(Self.stagingFolder)
                .appendingPathComponent("\(getpid())-\(runToken)-\(Self.folderName(source))")
            do {
                try? FileManager.default.removeItem(at: folder)  // an earlier file of this run with the same id
                state.staged = try IndexStore(folder: folder.path)
            } catch {
                throw SightlineError.cannotOpen(input: folder.path, reason: "cannot open a staging index: \(error)")
            }
        }
        try state.staged?.append(document, retention: nil)
        return document.video
    }

    private func removeStaging(_ state: SourceState) {
        guard let staged = state.staged else { return }
        state.staged = nil
        try? FileManager.default.removeItem(at: staged.folder)
        // The staging folder itself goes when no file is being staged (rmdir fails otherwise).
        rmdir(staged.folder.deletingLastPathComponent().path)
    }

    /// Staging folders left by a run that was killed (its process is gone) are removed; those
    /// of a run still going (another job writing into the same index) are left alone.
    private func removeStagingOfDeadRuns() {
        let staging = store.folder.appendingPathComponent(Self.stagingFolder)
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: staging.path) else { return }
        for entry in entries {
            guard let pid = entry.split(separator: "-").first.flatMap({ Int32($0) }), pid > 0 else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { try? FileManager.default.removeItem(at: staging.appendingPathComponent(entry)) }
        }
    }

    /// `thumbnails/<source>/<run>/shot-NNNN.jpg` (live: `thumbnails/<source>/live/…` named
    /// by start time too, as a reconnect restarts shot numbers), relative to the index folder.
    private func writeThumbnail(_ frame: SmallFrame, source: String, shot: Int, start: Double, live: Bool) throws -> String {
        let name = live ? String(format: "shot-%05d-%.0f.jpg", shot, start * 1000) : String(format: "shot-%05d.jpg", shot)
        let relative = [IndexStore.thumbnailFolder, Self.folderName(source), live ? "live" : runToken, name].joined(separator: "/")
        let url = store.folder.appendingPathComponent(relative)
        let jpeg = try encoder.encode(frame.pixels, width: frame.width, height: frame.height, format: frame.format)
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try jpeg.write(to: url)
        } catch {
            throw SightlineError.cannotOpen(input: url.path, reason: "cannot write a thumbnail: \(error.localizedDescription)")
        }
        return relative
    }

    /// A source id as one folder name: `files/a b.mp4` → `files_a_b.mp4-1f3a9c20`. The hash
    /// of the exact id keeps two ids that sanitise alike (`a b`, `a_b`) apart.
    static func folderName(_ source: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
        var name = String(source.map { allowed.contains($0) ? $0 : "_" }.prefix(80))
        if name.hasPrefix(".") { name = "_" + name.dropFirst() }
        var hash: UInt32 = 2_166_136_261  // FNV-1a: stable across runs, unlike Hasher
        for byte in source.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return name + "-" + String(format: "%08x", hash)
    }

    private func removeThumbnails(of source: String, except keep: String? = nil, only target: String? = nil) {
        let folder = store.folder.appendingPathComponent(IndexStore.thumbnailFolder).appendingPathComponent(Self.folderName(source))
        guard let runs = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return }
        for run in runs where (keep.map { run != $0 } ?? true) && (target.map { run == $0 } ?? true) {
            try? FileManager.default.removeItem(at: folder.appendingPathComponent(run))
        }
    }
}
