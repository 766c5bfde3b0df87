import Foundation
import Testing
import SightlineCore
import SightlineGraph
import SightlineIndex
@testable import SightlineNodes

@Suite struct RepresentativeFramesTests {
    @Test func theMiddleFrameOfAShotIsChosen() {
        var frames = RepresentativeFrames<Int>(capacity: 16)
        for i in 0..<7 { frames.offer(Double(i) * 0.5, i) }  // 0 … 3 s
        let chosen = frames.choose(start: 0, end: 3)
        #expect(chosen?.payload == 3)  // 1.5 s
        #expect(frames.kept.map(\.payload) == [6])  // the frame at 3 s opens the next shot
    }

    @Test func aLongShotStaysBoundedAndEvenlyCovered() {
        var frames = RepresentativeFrames<Int>(capacity: 8)
        var offered = 0
        for i in 0..<10_000 where frames.wants(Double(i)) {
            frames.offer(Double(i), i)
            offered += 1
        }
        #expect(frames.kept.count <= 8)
        #expect(offered < 200, "frames the owner had to prepare: \(offered)")
        // Kept frames span the shot, so the middle one is near its middle.
        let chosen = frames.choose(start: 0, end: 10_000)
        #expect(abs(Double(chosen?.payload ?? 0) - 5_000) < 1_500, "\(String(describing: chosen))")
    }

    @Test func aShotWithoutKeptFramesHasNoThumbnail() {
        var frames = RepresentativeFrames<Int>()
        frames.offer(10, 1)
        #expect(frames.choose(start: 0, end: 5) == nil)
        #expect(frames.kept.count == 1)
    }
}

@Suite struct IndexSinkTests {
    private func folder() -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("sightline-indexsink-\(UUID().uuidString)")
        return url.path
    }

    private func frame(_ source: String, at t: Double, shade: UInt8) -> Item {
        .frame(Frame(sourceID: source, decodeIndex: Int(t * 25), timestamp: Timestamp(pts: Int64(t * 1000), timeBase: Rational(1, 1000)), seconds: t,
                     ingestWallClock: 0, isKeyframe: true, width: 64, height: 48, pixelFormat: .rgb24,
                     pixels: [UInt8](repeating: shade, count: 64 * 48 * 3)))
    }

    private func started(_ source: String, path: String?) -> Item {
        .status(StatusEvent(.started(SourceOpened(url: path ?? "udp://127.0.0.1:5000", container: "mp4", codec: "h264", width: 64, height: 48, sha256: path == nil ? nil : "feed",
                                                  batchFile: path.map { BatchFile(path: $0, index: 1, count: 1, size: 1, mtime: 1) })), sourceID: source, wallClock: 0))
    }

    private func caption(_ source: String, _ text: String, _ start: Double, _ end: Double) -> Item {
        .record(Record(.caption(Caption(text: text, maskedTerms: [], repeated: false, labels: [], onScreenText: [])), sourceID: source, start: start, end: end))
    }

    /// Two 2-second shots of one batch file, as the pipeline delivers them.
    private func feedFile(_ sink: IndexSink, source: String, captions: [String], complete: Bool, context: TestContext) throws {
        try sink.process(started(source, path: "/videos/\(source).mp4"), context: context) { _ in }
        for (i, text) in captions.enumerated() {
            let start = Double(i * 2)
            for t in stride(from: start, to: start + 2, by: 0.5) { try sink.process(frame(source, at: t, shade: UInt8(40 + i * 100)), context: context) { _ in } }
            try sink.process(.record(TestRecords.shot(i, from: start, to: start + 2, endedBy: i == captions.count - 1 ? .end : .cut, source: source)), context: context) { _ in }
            try sink.process(caption(source, text, start, start + 2), context: context) { _ in }
        }
        try sink.process(.endOfStream(EndOfStream(sourceID: source, completed: complete)), context: context) { _ in }
    }

    private func shots(_ dir: String, _ source: String) throws -> [SearchHit] {
        try SearchEngine(store: IndexStore(folder: dir, create: false)).search(SearchQuery(text: "cat espresso dog", limit: 50, source: source), queryVector: nil)
            .sorted { $0.start < $1.start }
    }

    @Test func aFinishedFileIsWrittenWithAThumbnailPerShot() throws {
        let dir = folder()
        let context = try TestContext()
        let sink = try IndexSink(folder: dir, thumbnails: true, retention: nil)
        try feedFile(sink, source: "files/a.mp4", captions: ["A cat.", "An espresso."], complete: true, context: context)
        try sink.close(context: context)
        let hits = try shots(dir, "files/a.mp4")
        #expect(hits.map(\.caption) == ["A cat.", "An espresso."])
        #expect(hits.map(\.location) == ["/videos/files/a.mp4.mp4", "/videos/files/a.mp4.mp4"])
        for hit in hits {
            let path = try #require(hit.thumbnail)
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            #expect(bytes.prefix(2) == Data([0xFF, 0xD8]), "not a JPEG: \(path)")
        }
    }

    @Test func aRerunReplacesAndAnInterruptedRunKeepsThePreviousRows() throws {
        let dir = folder()
        let context = try TestContext()
        let first = try IndexSink(folder: dir, thumbnails: true, retention: nil)
        try feedFile(first, source: "files/a.mp4", captions: ["A cat.", "An espresso."], complete: true, context: context)
        try first.close(context: context)
        let before = try shots(dir, "files/a.mp4")

        // Cut short: nothing of it lands, the old pictures stay where the rows point.
        let interrupted = try IndexSink(folder: dir, thumbnails: true, retention: nil)
        try feedFile(interrupted, source: "files/a.mp4", captions: ["A dog."], complete: false, context: context)
        try interrupted.close(context: context)
        let after = try shots(dir, "files/a.mp4")
        #expect(after.map(\.caption) == before.map(\.caption))
        for hit in after { #expect(FileManager.default.fileExists(atPath: try #require(hit.thumbnail))) }

        // Completed: it replaces the file's rows (one shot now), and the old pictures go.
        Thread.sleep(forTimeInterval: 0.01)  // a distinct run folder
        let rerun = try IndexSink(folder: dir, thumbnails: true, retention: nil)
        try feedFile(rerun, source: "files/a.mp4", captions: ["A dog."], complete: true, context: context)
        try rerun.close(context: context)
        let replaced = try shots(dir, "files/a.mp4")
        #expect(replaced.map(\.caption) == ["A dog."])
        for hit in before { #expect(!FileManager.default.fileExists(atPath: try #require(hit.thumbnail))) }
    }

    /// A batch file goes into a staging index shot by shot (so its rows never pile up in
    /// memory) and lands whole when it ends: until then the index shows the previous run.
    @Test func aBatchFileIsStagedShotByShotAndLandsWhole() throws {
        let dir = folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let context = try TestContext()
        let first = try IndexSink(folder: dir, thumbnails: false, retention: nil)
        try feedFile(first, source: "files/a.mp4", captions: ["A cat."], complete: true, context: context)
        try first.close(context: context)

        let source = "files/a.mp4"
        let sink = try IndexSink(folder: dir, thumbnails: false, retention: nil)
        try sink.process(started(source, path: "/videos/a.mp4"), context: context) { _ in }
        let vectors: [[Float]] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
        for i in 0..<3 {
            let start = Double(i * 2)
            try sink.process(.record(TestRecords.ocr(source, at: start + 0.5, "sign \(i)")), context: context) { _ in }
            try sink.process(.record(TestRecords.shot(i, from: start, to: start + 2, endedBy: i == 2 ? .end : .cut, source: source)), context: context) { _ in }
            try sink.process(caption(source, ["A dog.", "An espresso.", "A dog again."][i], start, start + 2), context: context) { _ in }
            let embedding = Embedding(space: "test-space", scope: .segment(index: i, frames: 4), vector: vectors[i])
            try sink.process(.record(Record(.embedding(embedding), sourceID: source, start: start, end: start + 2)), context: context) { _ in }
            // Shots before this one are staged, not yet in the index.
            #expect(try shots(dir, source).map(\.caption) == ["A cat."])
        }
        let staging = dir + "/" + IndexSink.stagingFolder
        #expect(try FileManager.default.contentsOfDirectory(atPath: staging).count == 1)
        try sink.process(.endOfStream(EndOfStream(sourceID: source, completed: true)), context: context) { _ in }
        try sink.close(context: context)

        #expect(try shots(dir, source).map(\.caption) == ["A dog.", "An espresso.", "A dog again."])
        #expect(!FileManager.default.fileExists(atPath: staging))
        let engine = SearchEngine(store: try IndexStore(folder: dir, create: false), space: "test-space")
        // On-screen text landed with its shot, and each shot's vector is linked to its own shot.
        #expect(try engine.search(SearchQuery(text: "sign", limit: 10), queryVector: nil).map(\.shotIndex).sorted() == [0, 1, 2])
        let nearest = try engine.search(SearchQuery(text: "", limit: 3), queryVector: [0, 1, 0]).max { ($0.similarity ?? -2) < ($1.similarity ?? -2) }
        #expect(nearest?.shotIndex == 1 && abs((nearest?.similarity ?? 0) - 1) < 1e-3)
    }

    @Test func stagingLeftByAKilledRunIsRemovedAndAnotherRunsIsKept() throws {
        let dir = folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let staging = URL(fileURLWithPath: dir).appendingPathComponent(IndexSink.stagingFolder)
        // A pid above Linux's largest (2^22) belongs to no process.
        let dead = staging.appendingPathComponent("4194400-abc-files_a.mp4-00000000"), alive = staging.appendingPathComponent("\(getpid())-abc-files_b.mp4-00000000")
        for folder in [dead, alive] { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        _ = try IndexSink(folder: dir, thumbnails: false, retention: nil)
        #expect(!FileManager.default.fileExists(atPath: dead.path))
        #expect(FileManager.default.fileExists(atPath: alive.path))
    }

    /// The jsonl sink journals a file and the index sink indexes it separately; a kill between
    /// the two leaves a file journaled but not indexed. The next run's index sink takes it out of
    /// the journal before any source starts, so `resume` redoes it instead of skipping it forever.
    @Test func aFileJournaledButNotIndexedIsForgottenSoTheNextRunRedoesIt() throws {
        let dir = folder()
        let context = try TestContext()
        let first = try IndexSink(folder: dir, thumbnails: false, retention: nil)
        try feedFile(first, source: "files/a.mp4", captions: ["A cat."], complete: true, context: context)
        try first.close(context: context)
        let journal = BatchJournal(directory: dir)
        func entry(_ path: String) -> BatchJournal.Entry {
            .init(source: "files/" + path, path: path, size: 1, mtime: 1, output: path + ".jsonl", finished: 1, pipeline: "p")
        }
        try journal.append(entry("/videos/files/a.mp4.mp4"))   // indexed above
        try journal.append(entry("/videos/files/b.mp4.mp4"))   // killed before the index had it
        let next = try IndexSink(folder: dir, thumbnails: false, retention: nil)
        try next.forgetJournaledFilesNotIndexed(outputDirectory: dir)
        #expect(Set(journal.entries().keys) == ["/videos/files/a.mp4.mp4"])
    }

    @Test func aLiveSourceIsWrittenShotByShotWithinItsRetention() throws {
        let dir = folder()
        let context = try TestContext()
        let sink = try IndexSink(folder: dir, thumbnails: true, retention: 10)
        try sink.process(started("cam", path: nil), context: context) { _ in }
        let store = try IndexStore(folder: dir, create: false)
        let engine = SearchEngine(store: store)
        func captions() throws -> [String] {
            try engine.search(SearchQuery(text: "window", limit: 100), queryVector: nil).sorted { $0.start < $1.start }.map(\.caption)
        }
        for i in 0..<10 {  // 4-second windows: 40 s of a camera
            let start = Double(i * 4)
            for t in stride(from: start, to: start + 4, by: 1) { try sink.process(frame("cam", at: t, shade: 100), context: context) { _ in } }
            try sink.process(.record(TestRecords.shot(i, from: start, to: start + 4, endedBy: .window, source: "cam")), context: context) { _ in }
            try sink.process(caption("cam", "window \(i)", start, start + 4), context: context) { _ in }
            // The shot before this one is searchable as soon as this one ends.
            if i >= 1 { #expect(try captions().last == "window \(i - 1)") }
        }
        try sink.process(.endOfStream(EndOfStream(sourceID: "cam", completed: true)), context: context) { _ in }
        try sink.close(context: context)
        // 40 s written, 10 s kept: the windows ending at or after 30 s.
        #expect(try captions() == ["window 7", "window 8", "window 9"])
        let pictures = try FileManager.default.subpathsOfDirectory(atPath: dir + "/thumbnails").filter { $0.hasSuffix(".jpg") }
        #expect(pictures.count == 3, "\(pictures)")
    }

    @Test func anUnwritableFolderIsAClearError() {
        #expect(throws: SightlineError.self) { _ = try IndexSink(folder: "/proc/sightline-index", thumbnails: false, retention: nil) }
    }
}
