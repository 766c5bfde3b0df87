import Foundation
import GRDB
import SightlineCore

/// Why the index cannot be used.
public enum IndexError: UserFacingError, Equatable {
    case missing(folder: String)
    case unreadable(path: String, reason: String)
    case badQuery(String)

    public var message: String {
        switch self {
        case .missing(let folder): "no index in '\(folder)'"
        case .unreadable(let path, let reason): "cannot read the index '\(path)': \(reason)"
        case .badQuery(let reason): "bad query: \(reason)"
        }
    }

    public var hint: String? {
        switch self {
        case .missing: "run the batch pipeline first (Pipelines/batch.yaml writes sightline-index.sqlite into its output folder), or pass --index DIR"
        case .unreadable: "is another program writing it, or is the disk full?"
        case .badQuery: nil
        }
    }
}

/// The results index of one output folder: `sightline-index.sqlite` (SQLite in WAL mode, so
/// readers — `sightline search`, the review page — never wait for the writer) and a
/// `thumbnails/` folder beside it.
///
/// Writes are whole documents in one transaction each: a batch file's rows replace the rows of
/// its previous run at once, so a crash leaves the old rows or the new ones, never half.
public final class IndexStore: Sendable {
    public static let fileName = "sightline-index.sqlite"
    public static let thumbnailFolder = "thumbnails"

    public let folder: URL
    let pool: DatabasePool

    /// Opens (creating when `create`) the index in `folder`.
    public init(folder: String, create: Bool = true) throws {
        let url = URL(fileURLWithPath: folder, isDirectory: true).standardizedFileURL
        let path = url.appendingPathComponent(Self.fileName).path
        if !create && !FileManager.default.fileExists(atPath: path) { throw IndexError.missing(folder: folder) }
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            var configuration = Configuration()
            configuration.foreignKeysEnabled = true
            // A writer holding the lock (a batch job committing a file) makes others wait, not fail.
            configuration.busyMode = .timeout(10)
            pool = try DatabasePool(path: path, configuration: configuration)
            try IndexSchema.migrator().migrate(pool)
        } catch {
            throw IndexError.unreadable(path: path, reason: String(describing: error))
        }
        self.folder = url
    }

    /// A counter every write bumps, so a reader holding vectors in memory knows to reload.
    public func generation() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'generation'") ?? 0 }
    }

    /// Replaces everything about `document.video.source` with `document`, in one transaction.
    @discardableResult
    public func replace(_ document: IndexDocument, indexedAt: Double = Date().timeIntervalSince1970) throws -> Int64 {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM videos WHERE source = ?", arguments: [document.video.source])
            let videoID = try Self.upsertVideo(document.video, indexedAt: indexedAt, db: db)
            try Self.insertRows(document, videoID: videoID, db: db)
            try Self.bumpGeneration(db)
            return videoID
        }
    }

    /// Replaces everything about `video.source` with the rows of `staged` (an index a batch
    /// file was written into shot by shot), in one transaction: SQLite copies them table to
    /// table, so the file's rows never sit in this process's memory all at once, and readers
    /// see the old rows or the new ones, never half. Shot vectors are re-linked by shot index.
    @discardableResult
    public func replace(with staged: IndexStore, video: IndexDocument.Video, indexedAt: Double = Date().timeIntervalSince1970) throws -> Int64 {
        let stagedPath = staged.folder.appendingPathComponent(Self.fileName).path
        return try pool.writeWithoutTransaction { db in
            // ATTACH cannot run inside a transaction; the copy below is one.
            try db.execute(sql: "ATTACH DATABASE ? AS staged", arguments: [stagedPath])
            defer { try? db.execute(sql: "DETACH DATABASE staged") }
            var videoID: Int64 = 0
            try db.inTransaction(.immediate) {
                try db.execute(sql: "DELETE FROM main.videos WHERE source = ?", arguments: [video.source])
                videoID = try Self.upsertVideo(video, indexedAt: indexedAt, db: db)
                let id: StatementArguments = [videoID]
                for table in Self.videoTables {
                    let columns = try Self.copiedColumns(table, db: db)
                    let list = columns.map { "\"\($0)\"" }.joined(separator: ", ")
                    if table == "vectors" {
                        // A segment vector's shot gets its new id, found by the shot's index.
                        try db.execute(sql: """
                            INSERT INTO main.vectors (video_id, shot_id, \(list))
                            SELECT ?1, (SELECT m.id FROM main.shots m WHERE m.video_id = ?1 AND m.shot_index = s.shot_index), \(columns.map { "v.\"\($0)\"" }.joined(separator: ", "))
                            FROM staged.vectors v LEFT JOIN staged.shots s ON s.id = v.shot_id ORDER BY v.rowid
                            """, arguments: id)
                    } else {
                        try db.execute(sql: "INSERT INTO main.\(table) (video_id, \(list)) SELECT ?, \(list) FROM staged.\(table) ORDER BY rowid",
                                       arguments: id)
                    }
                }
                try Self.bumpGeneration(db)
                return .commit
            }
            return videoID
        }
    }

    /// The tables that hold a video's rows (each with a `video_id`), in the order
    /// `replace(with:)` copies them: shots first, so vectors can find their shots' new ids.
    static let videoTables = ["shots", "labels", "texts", "detections", "tracks", "flags", "vectors"]

    /// The columns of `table` that `replace(with:)` copies from a staged index: all but the
    /// row id, the video's id and a vector's shot id, read from the schema so that a column
    /// added later is copied too. A staged index with other columns (another version's) is
    /// refused rather than half copied.
    static func copiedColumns(_ table: String, db: Database) throws -> [String] {
        func columns(_ schema: String) throws -> [String] {
            try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?, ?) ORDER BY cid", arguments: [table, schema])
                .filter { !["id", "video_id", "shot_id"].contains($0) }
        }
        let main = try columns("main"), staged = try columns("staged")
        guard main == staged, !main.isEmpty else {
            throw IndexError.unreadable(path: "staged.\(table)", reason: "its columns \(staged) are not the index's \(main)")
        }
        return main
    }

    /// Adds `document`'s rows to its source (a live source writes each finished shot), then
    /// keeps only the last `retention` seconds of that source's media time (nil: keep all).
    @discardableResult
    public func append(_ document: IndexDocument, retention: Double?, indexedAt: Double = Date().timeIntervalSince1970) throws -> Int64 {
        try pool.write { db in
            let videoID = try Self.upsertVideo(document.video, indexedAt: indexedAt, db: db)
            try Self.insertRows(document, videoID: videoID, db: db)
            if let retention {
                let newest = try Double.fetchOne(db, sql: #"SELECT max("end") FROM shots WHERE video_id = ?"#, arguments: [videoID]) ?? 0
                let cutoff = newest - retention
                for table in ["labels", "texts", "detections"] {
                    try db.execute(sql: "DELETE FROM \(table) WHERE video_id = ? AND time < ?", arguments: [videoID, cutoff])
                }
                for table in ["shots", "tracks", "flags", "vectors"] {
                    try db.execute(sql: #"DELETE FROM \#(table) WHERE video_id = ? AND "end" < ?"#, arguments: [videoID, cutoff])
                }
            }
            try Self.bumpGeneration(db)
            return videoID
        }
    }

    /// The file locations of every finished (not live) video in the index.
    public func indexedLocations() throws -> Set<String> {
        try pool.read { db in Set(try String.fetchAll(db, sql: "SELECT location FROM videos WHERE live = 0")) }
    }

    /// Removes a source and its rows; true when it was there.
    @discardableResult
    public func remove(source: String) throws -> Bool {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM videos WHERE source = ?", arguments: [source])
            let removed = db.changesCount > 0
            try Self.bumpGeneration(db)
            return removed
        }
    }

    private static func bumpGeneration(_ db: Database) throws {
        try db.execute(sql: "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
    }

    private static func upsertVideo(_ video: IndexDocument.Video, indexedAt: Double, db: Database) throws -> Int64 {
        try db.execute(sql: """
            INSERT INTO videos (source, location, sha256, duration, live, pipeline_hash, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(source) DO UPDATE SET location = excluded.location, sha256 = excluded.sha256,
                duration = max(duration, excluded.duration), pipeline_hash = excluded.pipeline_hash, indexed_at = excluded.indexed_at
            """, arguments: [video.source, video.location, video.sha256, video.duration, video.live, video.pipelineHash, indexedAt])
        guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM videos WHERE source = ?", arguments: [video.source]) else {
            throw IndexError.unreadable(path: "videos", reason: "the row just written is missing")
        }
        return id
    }

    private static func insertRows(_ document: IndexDocument, videoID: Int64, db: Database) throws {
        var shotIDs: [Int: Int64] = [:]
        let shot = try db.makeStatement(sql: """
            INSERT INTO shots (video_id, shot_index, start, "end", ended_by, caption, label_words, ocr_text, people, faces, flagged, thumbnail, thumbnail_time, speech)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        for s in document.shots {
            try shot.execute(arguments: [videoID, s.index, s.start, s.end, s.endedBy, s.caption, s.labelWords, s.text, s.people, s.faces,
                                         s.flagged, s.thumbnail, s.thumbnailTime, s.speech])
            shotIDs[s.index] = db.lastInsertedRowID
        }
        let label = try db.makeStatement(sql: "INSERT INTO labels VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        for l in document.labels {
            try label.execute(arguments: [videoID, l.time, l.name, l.probability, l.origin, l.concept,
                                          l.conceptPath.isEmpty ? nil : l.conceptPath.joined(separator: "/"), l.colour])
        }
        let text = try db.makeStatement(sql: "INSERT INTO texts VALUES (?, ?, ?, ?)")
        for t in document.texts { try text.execute(arguments: [videoID, t.time, t.text, t.confidence]) }
        let detection = try db.makeStatement(sql: "INSERT INTO detections VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        for d in document.detections {
            try detection.execute(arguments: [videoID, d.time, d.kind, d.box.x, d.box.y, d.box.width, d.box.height, d.score, d.frameWidth, d.frameHeight,
                                              d.attributes.isEmpty ? nil : JSONText.object(d.attributes)])
        }
        let track = try db.makeStatement(sql: "INSERT INTO tracks VALUES (?, ?, ?, ?, ?, ?, ?)")
        for t in document.tracks {
            try track.execute(arguments: [videoID, t.trackID, t.label, t.start, t.end, t.movement,
                                          JSONText.array(t.path.map { [$0.time, $0.x, $0.y] })])
        }
        let flag = try db.makeStatement(sql: #"INSERT INTO flags (video_id, category, start, "end", peak, evidence, notes) VALUES (?, ?, ?, ?, ?, ?, ?)"#)
        for f in document.flags {
            try flag.execute(arguments: [videoID, f.category, f.start, f.end, f.peak, JSONText.array(f.evidence), JSONText.strings(f.notes)])
        }
        let vector = try db.makeStatement(sql: #"INSERT INTO vectors VALUES (?, ?, ?, ?, ?, ?, ?)"#)
        for v in document.vectors {
            try vector.execute(arguments: [videoID, v.shotIndex.flatMap { shotIDs[$0] }, v.space, v.start, v.end, v.vector.count, HalfVector.encode(v.vector)])
        }
    }
}

/// Small JSON texts for the index's detail columns (boxes' attributes, paths, evidence times).
enum JSONText {
    static func object(_ values: [String: String]) -> String {
        (try? String(decoding: JSONEncoder.sorted.encode(values), as: UTF8.self)) ?? "{}"
    }

    static func array(_ values: [Double]) -> String {
        "[" + values.map { String(format: "%.3f", $0) }.joined(separator: ",") + "]"
    }

    static func array(_ values: [[Double]]) -> String {
        "[" + values.map { array($0) }.joined(separator: ",") + "]"
    }

    static func strings(_ values: [String]) -> String {
        (try? String(decoding: JSONEncoder.sorted.encode(values), as: UTF8.self)) ?? "[]"
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

/// Vectors as little-endian IEEE float16 blobs: half the bytes of float32, and what the
/// in-memory scan reads.
public enum HalfVector {
    public static func encode(_ vector: [Float]) -> Data {
        var data = Data(count: vector.count * 2)
        data.withUnsafeMutableBytes { raw in
            for (i, value) in vector.enumerated() { raw.storeBytes(of: Float16(value).bitPattern.littleEndian, toByteOffset: i * 2, as: UInt16.self) }
        }
        return data
    }

    /// The bit patterns of a blob, or nil when its length is not `dimension` halves.
    public static func bits(_ data: Data, dimension: Int) -> [UInt16]? {
        guard dimension > 0, data.count == dimension * 2 else { return nil }
        return data.withUnsafeBytes { raw in (0..<dimension).map { UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) } }
    }

    public static func decode(_ data: Data, dimension: Int) -> [Float]? {
        bits(data, dimension: dimension)?.map { Float(Float16(bitPattern: $0)) }
    }
}
