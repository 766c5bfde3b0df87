import Foundation
import Testing
import SightlineCore
@testable import SightlineIndex
import GRDB

private func temporaryFolder() -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("sightline-index-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

/// A unit vector pointing mostly along `axis` (so queries along one axis find it first).
private func axisVector(_ axis: Int, dimension: Int = 8, spread: Float = 0.1) -> [Float] {
    var v = [Float](repeating: spread, count: dimension)
    v[axis] = 1
    let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
    return v.map { $0 / norm }
}

/// A document built the way the `index` node builds one: from typed records.
private func document(source: String, shots: [(caption: String, label: String, axis: Int)], text: [Int: String] = [:],
                      flagShot: Int? = nil, people: [Int: [String: String]] = [:]) -> IndexDocument {
    var builder = IndexDocumentBuilder(video: .init(source: source, location: "/videos/\(source).mp4", sha256: "abc", duration: 0, live: false, pipelineHash: "p"))
    for (i, shot) in shots.enumerated() {
        let start = Double(i * 3), end = Double(i * 3 + 3)
        builder.add(Record(.labels(Labels(frameIndex: i * 75, top: [ScoredLabel(name: shot.label, index: 0, probability: 0.8)])),
                           sourceID: source, start: start + 1, end: start + 1))
        if let line = text[i] {
            builder.add(Record(.ocr(OnScreenText(frameIndex: i * 75, lines: [.init(text: line, confidence: 0.9, box: [])])), sourceID: source, start: start + 1, end: start + 1))
        }
        if let attributes = people[i] {
            builder.add(Record(.people(Detections(frameIndex: i * 75, width: 640, height: 480,
                                                  objects: [DetectedObject(box: PixelBox(x: 10, y: 10, width: 100, height: 300), score: 0.9, attributes: attributes)])),
                               sourceID: source, start: start + 1, end: start + 1))
        }
        builder.add(Record(.shot(Shot(index: i, endedBy: i == shots.count - 1 ? .end : .cut)), sourceID: source, start: start, end: end))
        builder.add(Record(.embedding(Embedding(space: "minilm-384-conse", scope: .segment(index: i, frames: 6), vector: axisVector(shot.axis))),
                           sourceID: source, start: start, end: end))
        builder.add(Record(.caption(Caption(text: shot.caption, maskedTerms: [], repeated: false, labels: [], onScreenText: [])), sourceID: source, start: start, end: end))
    }
    if let flagShot {
        let t = Double(flagShot * 3 + 1)
        builder.add(Record(.moderation(ModerationEvent(phase: .start, category: "weapons", peak: 0.7, evidence: [t])), sourceID: source, start: t, end: t))
        builder.add(Record(.moderation(ModerationEvent(phase: .end, category: "weapons", peak: 0.8, evidence: [t, t + 0.5])), sourceID: source, start: t, end: t + 0.5))
    }
    return builder.finished()
}

@Suite struct IndexStoreTests {
    @Test func shotsGatherWhatWasSeenInThem() {
        let doc = document(source: "files/a.mp4", shots: [("An Egyptian cat.", "Egyptian cat", 0), ("An espresso.", "espresso", 1)],
                           text: [1: "OPEN 24 HOURS"], flagShot: 1, people: [0: ["upper_colour": "red"]])
        #expect(doc.shots.count == 2)
        #expect(doc.shots[0].caption == "An Egyptian cat.")
        #expect(doc.shots[0].labelWords.contains("egyptian cat"))
        #expect(doc.shots[0].labelWords.contains("person") && doc.shots[0].labelWords.contains("red"))
        #expect(doc.shots[0].people == 1 && doc.shots[1].people == 0)
        #expect(doc.shots[1].text == "OPEN 24 HOURS" && doc.shots[0].text.isEmpty)
        #expect(!doc.shots[0].flagged && doc.shots[1].flagged)
        #expect(doc.flags.count == 1 && doc.flags[0].end == 4.5)
        #expect(doc.video.duration == 6)
        #expect(doc.vectors.map(\.shotIndex) == [0, 1])
    }

    @Test func rerunningAFileReplacesItsRows() throws {
        let store = try IndexStore(folder: temporaryFolder())
        let first = document(source: "files/a.mp4", shots: [("A cat.", "tabby", 0), ("A dog.", "beagle", 1), ("A car.", "cab", 2)])
        try store.replace(first)
        try store.replace(document(source: "files/b.mp4", shots: [("A horse.", "sorrel", 3)]))
        let second = document(source: "files/a.mp4", shots: [("A rocket.", "missile", 4)])
        try store.replace(second)
        let counts = try store.pool.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM shots") ?? -1, try Int.fetchOne(db, sql: "SELECT count(*) FROM vectors") ?? -1,
             try Int.fetchOne(db, sql: "SELECT count(*) FROM videos") ?? -1, try Int.fetchOne(db, sql: "SELECT count(*) FROM shots_fts WHERE shots_fts MATCH 'cat'") ?? -1)
        }
        #expect(counts.0 == 2 && counts.1 == 2 && counts.2 == 2)
        #expect(counts.3 == 0, "the full-text rows of the replaced shots are gone too")
    }

    @Test func aFailedWriteLeavesTheOldRows() throws {
        let store = try IndexStore(folder: temporaryFolder())
        try store.replace(document(source: "files/a.mp4", shots: [("A cat.", "tabby", 0)]))
        // A document whose vector row cannot be written (a NaN dimension is fine; a shot row
        // with a NOT NULL violation is not): force a failure inside the transaction.
        try store.pool.write { db in try db.execute(sql: "CREATE TRIGGER fail BEFORE INSERT ON vectors BEGIN SELECT RAISE(ABORT, 'disk full'); END") }
        #expect(throws: (any Error).self) { try store.replace(document(source: "files/a.mp4", shots: [("A rocket.", "missile", 4)])) }
        let captions = try store.pool.read { db in try String.fetchAll(db, sql: "SELECT caption FROM shots") }
        #expect(captions == ["A cat."], "the old rows stay whole")
    }

    @Test func liveRetentionKeepsTheNewestSpan() throws {
        let store = try IndexStore(folder: temporaryFolder())
        for part in 0..<10 {
            var doc = IndexDocument(video: .init(source: "cam1", location: "rtsp://cam", sha256: nil, duration: 0, live: true, pipelineHash: nil))
            let start = Double(part * 10)
            doc.shots = [.init(index: part, start: start, end: start + 10, endedBy: "window", caption: "window \(part)")]
            doc.labels = [.init(time: start + 1, name: "cab", probability: 0.5, origin: "frame", concept: nil, conceptPath: [], colour: nil)]
            try store.append(doc, retention: 30)
        }
        let (shots, labels) = try store.pool.read { db in
            (try String.fetchAll(db, sql: "SELECT caption FROM shots ORDER BY start"), try Int.fetchOne(db, sql: "SELECT count(*) FROM labels") ?? -1)
        }
        #expect(shots == ["window 6", "window 7", "window 8", "window 9"])
        #expect(labels == 3)
    }

    @Test func halfVectorsRoundTripAndRefuseWrongLengths() {
        let v: [Float] = [0.5, -0.25, 1, 0.3333]
        let blob = HalfVector.encode(v)
        #expect(blob.count == 8)
        let back = HalfVector.decode(blob, dimension: 4) ?? []
        #expect(zip(v, back).allSatisfy { abs($0 - $1) < 1e-3 })
        #expect(HalfVector.decode(blob, dimension: 5) == nil)
        #expect(HalfVector.decode(blob, dimension: 0) == nil)
    }

    @Test func theVectorKernelMatchesItsReference() {
        var scan = VectorScan(dimension: 384)
        var generator = SystemRandomNumberGenerator()
        for id in 0..<257 { scan.append(id: Int64(id), vector: (0..<384).map { _ in Float.random(in: -1...1, using: &generator) * 0.05 }) }
        let query = (0..<384).map { _ in Float.random(in: -1...1, using: &generator) }
        let reference = scan.referenceScores(query)
        let portable = scan.scores(query, vectorised: false)
        let fast = scan.scores(query)
        func normalisedError(_ a: [Float], _ b: [Float]) -> Float {
            let diff = zip(a, b).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
            return diff / max(b.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot(), 1e-12)
        }
        #expect(normalisedError(portable, reference) < 1e-5)
        if VectorScan.hasVectorKernel {
            #expect(normalisedError(fast, reference) < 1e-5)
        }
    }

    @Test func aSplitScanEqualsOneCoreScan() {
        // Enough rows for the split to happen, an odd count so the last part is short.
        let dimension = 16
        var scan = VectorScan(dimension: dimension)
        var generator = SystemRandomNumberGenerator()
        let rows = VectorScan.rowsPerThread * 3 + 17
        scan.reserve(rows)
        for id in 0..<rows { scan.append(id: Int64(id), vector: (0..<dimension).map { _ in Float.random(in: -1...1, using: &generator) }) }
        let query = (0..<dimension).map { _ in Float.random(in: -1...1, using: &generator) }
        let one = scan.scores(query, threads: 1)
        let split = scan.scores(query, threads: 3)
        #expect(one.count == rows)
        #expect(one == split)
    }
}

@Suite struct SearchEngineTests {
    private func engine() throws -> SearchEngine {
        let store = try IndexStore(folder: temporaryFolder())
        try store.replace(document(source: "files/pets.mp4", shots: [("An Egyptian cat; static camera.", "Egyptian cat", 0),
                                                                    ("An espresso; static camera.", "espresso", 1)]))
        try store.replace(document(source: "files/street.mp4", shots: [("A person in red; a cab.", "cab", 2),
                                                                      ("A cab.", "cab", 3),
                                                                      ("A person in red.", "jersey", 4),
                                                                      ("A missile.", "missile", 5)],
                                   text: [1: "TAXI"], flagShot: 1, people: [0: ["upper_colour": "red"], 2: ["upper_colour": "red"]]))
        return SearchEngine(store: store)
    }

    @Test func fullTextFindsTheCatFirst() throws {
        let hits = try engine().search(SearchQuery(text: "a cat"), queryVector: nil)
        #expect(hits.first?.caption == "An Egyptian cat; static camera.")
        #expect(hits.first?.matchedTerms == ["cat"])
        #expect(hits.first?.textRank == 1)
    }

    @Test func vectorsFindWhatNoWordMatches() throws {
        // "kitten" is in no caption; the query vector (the caller's embedding) points at shot 0.
        let hits = try engine().search(SearchQuery(text: "kitten"), queryVector: axisVector(0))
        #expect(hits.first?.caption == "An Egyptian cat; static camera.")
        #expect(hits.first?.textRank == nil && hits.first?.vectorRank == 1)
    }

    @Test func shotsHoldingEveryObjectAndAttributeRankFirst() throws {
        // The vector points at the shot with only the person; the hierarchical step still puts
        // the shot with a red-clad person and a cab first.
        let hits = try engine().search(SearchQuery(text: "a person in a red jacket near a cab"), queryVector: axisVector(4))
        #expect(hits.first?.caption == "A person in red; a cab.")
        #expect(Set(hits.first?.matchedLabels ?? []) == ["person", "red", "cab"])
        #expect(hits.dropFirst().first?.caption == "A person in red.")
    }

    @Test func filtersNarrowTheHits() throws {
        let engine = try engine()
        #expect(try engine.search(SearchQuery(text: "cab", source: "pets"), queryVector: nil).isEmpty)
        #expect(try engine.search(SearchQuery(text: "cab", kind: .flags), queryVector: nil).map(\.caption) == ["A cab."])
        #expect(try engine.search(SearchQuery(text: "taxi", kind: .text), queryVector: nil).map(\.caption) == ["A cab."])
        #expect(try engine.search(SearchQuery(text: "cab", from: 4, to: 5), queryVector: nil).map(\.caption) == ["A cab."])
        #expect(try engine.search(SearchQuery(text: "cab", kind: .people), queryVector: axisVector(3)).allSatisfy { $0.caption.contains("person") })
    }

    @Test func badQueriesAreRefusedAndSyntaxIsInert() throws {
        let engine = try engine()
        #expect(throws: IndexError.self) { try engine.search(SearchQuery(text: "the a of"), queryVector: nil) }
        #expect(throws: IndexError.self) { try engine.search(SearchQuery(text: "cat", limit: 0), queryVector: nil) }
        #expect(throws: IndexError.self) { try engine.search(SearchQuery(text: "cat", from: 5, to: 1), queryVector: nil) }
        // FTS5 operators in the text are words, not syntax.
        #expect(try engine.search(SearchQuery(text: "cat\" OR NEAR(x* ^y"), queryVector: nil).first?.caption == "An Egyptian cat; static camera.")
    }

    @Test func aMissingIndexSaysHowToMakeOne() {
        #expect(throws: IndexError.missing(folder: "/nonexistent/x")) { _ = try IndexStore(folder: "/nonexistent/x", create: false) }
    }

    @Test func aNewWriteIsSeenByAnOpenEngine() throws {
        let engine = try engine()
        #expect(try engine.search(SearchQuery(text: "rocket"), queryVector: nil).isEmpty)
        try engine.store.replace(document(source: "files/launch.mp4", shots: [("A rocket on the pad.", "missile", 6)]))
        #expect(try engine.search(SearchQuery(text: "rocket"), queryVector: nil).map(\.caption) == ["A rocket on the pad."])
    }
}

@Suite struct IndexDocumentBuilderTimelineTests {
    private func builder() -> IndexDocumentBuilder {
        IndexDocumentBuilder(video: .init(source: "cam", location: "udp://x", sha256: nil, duration: 0, live: true, pipelineHash: nil))
    }

    @Test func aFlagEndingAtACutDoesNotFlagTheNextShot() {
        var b = builder()
        b.add(Record(.shot(Shot(index: 0, endedBy: .cut)), sourceID: "cam", start: 0, end: 3))
        b.add(Record(.moderation(ModerationEvent(phase: .start, category: "weapons", peak: 0.6, evidence: [1])), sourceID: "cam", start: 1, end: 1))
        b.add(Record(.moderation(ModerationEvent(phase: .end, category: "weapons", peak: 0.6, evidence: [1, 2.5])), sourceID: "cam", start: 1, end: 3))
        b.add(Record(.shot(Shot(index: 1, endedBy: .end)), sourceID: "cam", start: 3, end: 6))
        let doc = b.finished()
        #expect(doc.shots.map(\.flagged) == [true, false])
    }

    @Test func drainingHandsOverFinishedShotsAndKeepsTheRest() {
        var b = builder()
        b.add(Record(.labels(Labels(frameIndex: 0, top: [ScoredLabel(name: "tabby", index: 0, probability: 0.9)])), sourceID: "cam", start: 1, end: 1))
        b.add(Record(.shot(Shot(index: 0, endedBy: .window)), sourceID: "cam", start: 0, end: 4))
        b.add(Record(.caption(Caption(text: "A tabby.", maskedTerms: [], repeated: false, labels: [], onScreenText: [])), sourceID: "cam", start: 0, end: 4))
        b.add(Record(.labels(Labels(frameIndex: 9, top: [ScoredLabel(name: "espresso", index: 1, probability: 0.9)])), sourceID: "cam", start: 5, end: 5))
        // Shot 1 ends: shot 0 and everything before 4 s go out; the espresso label stays.
        let first = b.drain(before: 4)
        #expect(first.shots.map(\.index) == [0])
        #expect(first.shots[0].caption == "A tabby." && first.shots[0].labelWords.contains("tabby"))
        #expect(first.labels.map(\.name) == ["tabby"])
        b.add(Record(.shot(Shot(index: 1, endedBy: .window)), sourceID: "cam", start: 4, end: 8))
        b.add(Record(.caption(Caption(text: "An espresso.", maskedTerms: [], repeated: false, labels: [], onScreenText: [])), sourceID: "cam", start: 4, end: 8))
        let second = b.drain(before: .infinity)
        #expect(second.shots.map(\.index) == [1])
        #expect(second.shots[0].caption == "An espresso." && second.shots[0].labelWords.contains("espresso") && !second.shots[0].labelWords.contains("tabby"))
        #expect(second.labels.map(\.name) == ["espresso"])
        #expect(b.drain(before: .infinity).shots.isEmpty)
    }
}

@Suite struct ReviewQueueTests {
    @Test func verdictsOutliveAReindexAndTheLatestCounts() throws {
        let store = try IndexStore(folder: temporaryFolder())
        let doc = document(source: "files/a.mp4", shots: [("A cat.", "tabby", 0), ("A rocket.", "missile", 1)], flagShot: 1)
        try store.replace(doc)
        let flag = try #require(try store.flagsForReview().first)
        #expect(flag.category == "weapons" && flag.shotIndex == 1 && flag.latest == nil)
        #expect(try store.flagsForReview(pending: true).count == 1)

        try store.record(Verdict(decision: .confirmed, note: "", reviewer: "ana", at: 100), onFlag: flag.id)
        try store.record(Verdict(decision: .dismissed, note: "it is a launch pad", reviewer: "ben", at: 200), onFlag: flag.id)
        #expect(try store.flagsForReview().first?.latest?.decision == .dismissed)
        #expect(try store.flagsForReview(pending: true).isEmpty)

        // Re-indexing the file gives the flag a new row; its verdict still applies.
        try store.replace(doc)
        let again = try #require(try store.flagsForReview().first)
        #expect(again.id != flag.id && again.latest?.reviewer == "ben")
        // The report keeps every verdict, filtered by time.
        #expect(try store.reviewReport().map(\.verdict.reviewer) == ["ana", "ben"])
        #expect(try store.reviewReport(since: 150).map(\.verdict.reviewer) == ["ben"])
        #expect(try store.reviewReport(source: "files/other.mp4").isEmpty)
    }

    @Test func aVerdictNeedsAReviewerAndAFlag() throws {
        let store = try IndexStore(folder: temporaryFolder())
        try store.replace(document(source: "files/a.mp4", shots: [("A rocket.", "missile", 1)], flagShot: 0))
        let id = try #require(try store.flagsForReview().first?.id)
        #expect(throws: IndexError.self) { try store.record(Verdict(decision: .confirmed, note: "", reviewer: "  ", at: 1), onFlag: id) }
        #expect(throws: IndexError.self) { try store.record(Verdict(decision: .confirmed, note: "", reviewer: "ana", at: 1), onFlag: id + 100) }
        #expect(try store.reviewReport().isEmpty)
    }
}

@Suite struct TopScoresTests {
    @Test func keepsWhatAFullSortWouldPutFirst() {
        var generator = SystemRandomNumberGenerator()
        let scores = (0..<5000).map { _ in Float.random(in: -1...1, using: &generator) }
        var top = TopScores(capacity: 50)
        for (i, s) in scores.enumerated() { top.insert(Int64(i), s) }
        let sorted = scores.enumerated().sorted { $0.element > $1.element }.prefix(50)
        #expect(top.items.map(\.0) == sorted.map { Int64($0.offset) })
    }
}

/// Transcripts in the index: what was said lands on the shots it overlaps and is searched with
/// the rest; an index made before spoken text existed gains it by migration, its rows kept.
@Suite struct SpokenTextIndexTests {
    func spokenDocument() -> IndexDocument {
        var builder = IndexDocumentBuilder(video: .init(source: "files/talk.mp4", location: "/videos/talk.mp4", sha256: "abc", duration: 0, live: false, pipelineHash: "p"))
        builder.add(Record(.shot(Shot(index: 0, endedBy: .cut)), sourceID: "files/talk.mp4", start: 0, end: 5))
        builder.add(Record(.shot(Shot(index: 1, endedBy: .end)), sourceID: "files/talk.mp4", start: 5, end: 10))
        builder.add(Record(.caption(Caption(text: "A man at a desk.", maskedTerms: [], repeated: false, labels: [], onScreenText: [])), sourceID: "files/talk.mp4", start: 0, end: 5))
        builder.add(Record(.caption(Caption(text: "A man at a desk.", maskedTerms: [], repeated: false, labels: [], onScreenText: [])), sourceID: "files/talk.mp4", start: 5, end: 10))
        let segments = [Transcript.Segment(start: 1, end: 3, text: "Hello there."), Transcript.Segment(start: 6, end: 8, text: "The quarterly figures are in.")]
        builder.add(Record(.transcript(Transcript(text: "Hello there. The quarterly figures are in.", segments: segments)), sourceID: "files/talk.mp4", start: 0.5, end: 9))
        return builder.finished()
    }

    @Test func speechLandsOnTheShotsItOverlapsAndIsFound() throws {
        let document = spokenDocument()
        #expect(document.shots.map(\.speech) == ["Hello there.", "The quarterly figures are in."])
        let store = try IndexStore(folder: temporaryFolder())
        try store.replace(document)
        let hits = try SearchEngine(store: store).search(SearchQuery(text: "quarterly figures"), queryVector: nil)
        #expect(hits.count == 1)
        #expect(hits.first?.shotIndex == 1 && hits.first?.speech == "The quarterly figures are in.")
        #expect(hits.first?.matchedTerms == ["quarterly", "figures"])
    }

    @Test func anIndexFromBeforeSpeechIsMigratedWithItsRowsSearchable() throws {
        let folder = temporaryFolder()
        let path = folder + "/sightline-index.sqlite"
        // Made the way the previous release made it: the migrations up to v2 only, one shot.
        let queue = try DatabaseQueue(path: path)
        try IndexSchema.migrator().migrate(queue, upTo: "v2-reviews")
        try queue.write { db in
            try db.execute(sql: "INSERT INTO videos (source, location, sha256, duration, live, pipeline_hash, indexed_at) VALUES ('files/a.mp4', '/a.mp4', 'x', 4, 0, 'p', 0)")
            try db.execute(sql: """
                INSERT INTO shots (video_id, shot_index, start, "end", ended_by, caption, label_words, ocr_text, people, faces, flagged)
                VALUES (1, 0, 0, 4, 'end', 'A lighthouse at dusk.', '', '', 0, 0, 0)
                """)
        }
        try queue.close()
        let store = try IndexStore(folder: folder)
        #expect(try SearchEngine(store: store).search(SearchQuery(text: "lighthouse"), queryVector: nil).count == 1)
        try store.replace(spokenDocument())
        #expect(try SearchEngine(store: store).search(SearchQuery(text: "hello"), queryVector: nil).first?.speech == "Hello there.")
    }
}

/// `replace(with:)` copies a staged index table to table. Whatever a document holds must land
/// the same as when the document is written directly, in every column of every table that
/// holds a video's rows: a column or table the copy misses would be lost without a word.
@Suite struct IndexStagingTests {
    /// Every kind of row, every optional column filled.
    static func fullDocument() -> IndexDocument {
        var doc = document(source: "files/full.mp4", shots: [("A cat.", "tabby", 0), ("A dog.", "beagle", 1), ("A car.", "cab", 2)],
                           text: [1: "OPEN 24 HOURS", 2: "EXIT"], flagShot: 1, people: [0: ["upper_colour": "red"], 2: ["lower_colour": "blue"]])
        doc.shots[0].thumbnail = "thumbs/0.jpg"
        doc.shots[0].thumbnailTime = 1.5
        doc.shots[1].speech = "hello there"
        doc.labels[0].concept = "cat"
        doc.labels[0].conceptPath = ["animal", "mammal", "cat"]
        doc.labels[0].colour = "orange"
        doc.tracks = [.init(trackID: 7, label: "person", start: 0.5, end: 2.5, movement: "moving left",
                            path: [PixelPathPoint(time: 0.5, x: 100, y: 200, area: 900), PixelPathPoint(time: 2.5, x: 40, y: 210, area: 950)])]
        doc.flags[0].notes = ["reviewed by a test"]
        // A frame's vector (no shot) beside the shots' pooled ones.
        doc.vectors.append(.init(space: "effnet-1280", shotIndex: nil, start: 4, end: 4, vector: axisVector(3)))
        return doc
    }

    /// Each table's rows for `source`, every column but the ids, a vector's shot as its index.
    static func rows(_ store: IndexStore, source: String) throws -> [String: [[String: DatabaseValue]]] {
        try store.pool.read { db in
            var all: [String: [[String: DatabaseValue]]] = [:]
            for table in IndexStore.videoTables {
                let shotIndex = table == "vectors" ? ", (SELECT s.shot_index FROM shots s WHERE s.id = t.shot_id) AS shot_of_vector" : ""
                let rows = try Row.fetchAll(db, sql: "SELECT t.*\(shotIndex) FROM \(table) t JOIN videos v ON v.id = t.video_id WHERE v.source = ? ORDER BY t.rowid",
                                            arguments: [source])
                all[table] = rows.map { row in
                    var values: [String: DatabaseValue] = [:]
                    for column in row.columnNames where !["id", "video_id", "shot_id"].contains(column) { values[column] = row[column] }
                    return values
                }
            }
            return all
        }
    }

    @Test func aStagedFileLandsAsIfWrittenDirectly() throws {
        let doc = Self.fullDocument()
        let direct = try IndexStore(folder: temporaryFolder())
        try direct.replace(document(source: "files/other.mp4", shots: [("A horse.", "sorrel", 3)]))  // other ids before it
        try direct.replace(doc, indexedAt: 100)

        let main = try IndexStore(folder: temporaryFolder())
        let staged = try IndexStore(folder: temporaryFolder())
        // Staged shot by shot, as the index node writes a batch file.
        for index in doc.shots.indices {
            var part = IndexDocument(video: doc.video)
            part.shots = [doc.shots[index]]
            let (start, end) = (doc.shots[index].start, doc.shots[index].end)
            func within(_ t: Double) -> Bool { t >= start && (t < end || index == doc.shots.count - 1) }
            part.labels = doc.labels.filter { within($0.time) }
            part.texts = doc.texts.filter { within($0.time) }
            part.detections = doc.detections.filter { within($0.time) }
            part.tracks = index == 0 ? doc.tracks : []
            part.flags = index == 0 ? doc.flags : []
            part.vectors = doc.vectors.filter { $0.shotIndex == doc.shots[index].index || ($0.shotIndex == nil && index == 0) }
            try staged.append(part, retention: nil)
        }
        try main.replace(with: staged, video: doc.video, indexedAt: 100)

        let want = try Self.rows(direct, source: doc.video.source), got = try Self.rows(main, source: doc.video.source)
        for table in IndexStore.videoTables {
            let expected = want[table] ?? [], actual = got[table] ?? []
            #expect(!expected.isEmpty, "the document has \(table) rows")
            #expect(actual.count == expected.count, "\(table): \(actual.count) rows staged, \(expected.count) direct")
            // Rows in a table may land in another order (staged per shot); compare as sets.
            let key = { (row: [String: DatabaseValue]) in row.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "|") }
            #expect(Set(actual.map(key)) == Set(expected.map(key)), "\(table) differs")
        }
        #expect(try main.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM shots_fts WHERE shots_fts MATCH 'hello'") } == 1,
                "the speech of a staged shot is searchable")
    }

    @Test func everyTableWithAVideosRowsIsCopied() throws {
        let store = try IndexStore(folder: temporaryFolder())
        let tables = try store.pool.read { db in
            try String.fetchAll(db, sql: """
                SELECT m.name FROM sqlite_master m WHERE m.type = 'table'
                AND EXISTS (SELECT 1 FROM pragma_table_info(m.name) p WHERE p.name = 'video_id') ORDER BY m.name
                """)
        }
        #expect(Set(tables) == Set(IndexStore.videoTables), "a table holding a video's rows that replace(with:) would not copy")
    }
}
