import Foundation
import GRDB

/// What to look for, and where.
public struct SearchQuery: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// Shots with a moderation flag.
        case flags
        /// Shots with a face.
        case faces
        /// Shots with a person.
        case people
        /// Matches in on-screen text only, in shots that have some.
        case text
    }

    public var text: String
    public var limit: Int
    /// Part of a source id or a file path.
    public var source: String?
    /// Media time range the shot must overlap.
    public var from: Double?
    public var to: Double?
    public var kind: Kind?

    /// Shots found only by meaning need at least this cosine similarity to the query.
    public var minSimilarity: Double = 0.3

    public init(text: String, limit: Int = 10, source: String? = nil, from: Double? = nil, to: Double? = nil, kind: Kind? = nil) {
        self.text = text
        self.limit = limit
        self.source = source
        self.from = from
        self.to = to
        self.kind = kind
    }
}

/// One shot that matched, and why.
public struct SearchHit: Sendable, Equatable {
    public var shotID: Int64
    public var source: String
    public var location: String
    public var shotIndex: Int
    public var start: Double
    public var end: Double
    public var caption: String
    /// On-screen text read in the shot.
    public var text: String
    /// What was said during the shot (from transcripts), empty without a `transcribe` node.
    public var speech: String = ""
    public var flagged: Bool
    /// Query words found in the caption, labels or on-screen text.
    public var matchedTerms: [String]
    /// The shot's label words that answer the query's object and attribute words.
    public var matchedLabels: [String]
    /// 1-based rank in the full-text (BM25) list and in the vector list; nil where absent.
    public var textRank: Int?
    public var vectorRank: Int?
    /// Cosine similarity of the shot's vector and the query's.
    public var similarity: Double?
    /// Reciprocal-rank fusion of the two lists, plus the share of the query's object and
    /// attribute words the shot's labels hold (the hierarchical step).
    public var score: Double
    /// Absolute path of the shot's thumbnail, when there is one.
    public var thumbnail: String?
}

/// Hybrid search over an index: full-text BM25 over captions, label words and on-screen text,
/// and cosine similarity of the query's embedding against each shot's vector, fused by
/// reciprocal rank. Then, hierarchically, shots whose own labels hold more of the query's
/// object and attribute words ("person", "red", "car") rank first: a shot showing a red-clad
/// person and a car beats one that mentions only one of them.
///
/// Vectors are loaded once into memory (float16) and reloaded when the index changes.
public final class SearchEngine: @unchecked Sendable {
    /// Reciprocal-rank fusion's constant (the value of Cormack et al.; it damps the top ranks).
    static let fusionK = 60.0
    /// Candidates taken from each list before fusing.
    static let candidates = 200

    public let store: IndexStore
    /// The space searched: the one asked for, or (nil) the text space most shots have a
    /// vector in (`minilm-384-blend`, `-aligned` or `-conse`, by the semantic node's method).
    public let requestedSpace: String?
    public var space: String { lock.withLock { loadedSpace } }
    private var loadedSpace = ""
    private let lock = NSLock()
    private var loadedGeneration = -1
    private var scan = VectorScan(dimension: 1)
    /// Per row of `scan`: what the filters need without a query.
    private var rowInfo: [RowInfo] = []
    private var videoNames: [(source: String, location: String)] = []
    /// Words that occur in some shot's labels (the vocabulary of the hierarchical step).
    private var labelVocabulary: Set<String> = []

    /// What the filters need of each vector row, kept small (1M rows: ~32 MB): the video is
    /// an index into `videoNames`, not two strings per row.
    struct RowInfo {
        var video: Int32
        var flagged: Bool
        var hasText: Bool
        var faces: Int32
        var people: Int32
        var start: Double
        var end: Double
    }

    /// How far below the best match a shot found only by meaning may fall and still be shown.
    static let similarityMargin = 0.25

    public init(store: IndexStore, space: String? = nil) {
        self.store = store
        self.requestedSpace = space
    }

    /// Spaces whose vectors a MiniLM query embedding can be compared with.
    static let textSpacePrefix = "minilm-384"

    /// Seconds spent loading vectors the last time they were (re)loaded.
    public private(set) var lastLoadSeconds: Double = 0
    public var vectorBytes: Int { lock.withLock { scan.bytes } }
    public var vectorCount: Int { lock.withLock { scan.count } }

    /// Loads the vectors when the index changed since the last load.
    public func refresh() throws {
        let generation = try store.generation()
        try lock.withLock {
            guard generation != loadedGeneration else { return }
            let began = Date()
            var next = VectorScan(dimension: 1)
            var info: [RowInfo] = []
            var names: [(source: String, location: String)] = []
            var vocabulary = Set<String>()
            var space = requestedSpace ?? ""
            try store.pool.read { db in
                if requestedSpace == nil {
                    space = try String.fetchOne(db, sql: """
                        SELECT space FROM vectors WHERE shot_id IS NOT NULL AND substr(space, 1, ?) = ?
                        GROUP BY space ORDER BY count(*) DESC, space LIMIT 1
                        """, arguments: [Self.textSpacePrefix.count, Self.textSpacePrefix]) ?? ""
                }
                let dimension = try Int.fetchOne(db, sql: "SELECT dimension FROM vectors WHERE space = ? AND shot_id IS NOT NULL LIMIT 1", arguments: [space]) ?? 1
                next = VectorScan(dimension: dimension)
                let count = try Int.fetchOne(db, sql: "SELECT count(*) FROM vectors WHERE space = ? AND shot_id IS NOT NULL", arguments: [space]) ?? 0
                next.reserve(count)
                info.reserveCapacity(count)
                var videoIndex: [Int64: Int32] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT id, source, location FROM videos") {
                    videoIndex[row[0]] = Int32(names.count)
                    names.append((row[1], row[2]))
                }
                let rows = try Row.fetchCursor(db, sql: """
                    SELECT x.shot_id, x.vector, s.video_id, s.start, s."end", s.flagged, s.faces, s.people, s.ocr_text != ''
                    FROM vectors x JOIN shots s ON s.id = x.shot_id
                    WHERE x.space = ? AND x.dimension = ?
                    """, arguments: [space, dimension])
                while let row = try rows.next() {
                    let blob: Data = row[1]
                    guard let bits = HalfVector.bits(blob, dimension: dimension), let video = videoIndex[row[2]] else { continue }
                    next.append(id: row[0], bits: bits)
                    info.append(RowInfo(video: video, flagged: row[5], hasText: row[8], faces: Int32(clamping: row[6] as Int), people: Int32(clamping: row[7] as Int),
                                        start: row[3], end: row[4]))
                }
                let words = try String.fetchCursor(db, sql: "SELECT DISTINCT label_words FROM shots")
                while let line = try words.next() { vocabulary.formUnion(Self.words(line)) }
            }
            scan = next
            rowInfo = info
            videoNames = names
            loadedSpace = space
            labelVocabulary = vocabulary
            loadedGeneration = generation
            lastLoadSeconds = Date().timeIntervalSince(began)
        }
    }

    /// Searches. `queryVector` is the query's embedding in `space` (the caller embeds: this
    /// module knows no model); without it the search is full-text only.
    public func search(_ query: SearchQuery, queryVector: [Float]?) throws -> [SearchHit] {
        guard query.limit > 0 else { throw IndexError.badQuery("--limit must be at least 1") }
        if let from = query.from, let to = query.to, from > to { throw IndexError.badQuery("the time range ends (\(to) s) before it starts (\(from) s)") }
        try refresh()
        let terms = Self.terms(query.text)
        guard !terms.isEmpty || queryVector != nil else { throw IndexError.badQuery("the query has no words to search for") }

        // Full-text list.
        var textRanks: [Int64: Int] = [:]
        if !terms.isEmpty {
            let ids = try fullText(terms: terms, query: query)
            for (rank, id) in ids.enumerated() { textRanks[id] = rank + 1 }
        }
        // Vector list, filtered like the text list.
        var vectorRanks: [Int64: Int] = [:]
        var similarities: [Int64: Double] = [:]
        let (vocabulary, vectorIDs): (Set<String>, [(Int64, Float)]) = lock.withLock {
            guard let queryVector, queryVector.count == scan.dimension, scan.count > 0 else { return (labelVocabulary, []) }
            let scores = scan.scores(queryVector)
            // The best `candidates` rows without sorting them all (1M rows: a sort costs more
            // than the scan): a sorted window, entered only by scores above its floor.
            var best = TopScores(capacity: Self.candidates)
            let unfiltered = query.source == nil && query.from == nil && query.to == nil && query.kind == nil
            for row in scores.indices where best.admits(scores[row]) && (unfiltered || passes(rowInfo[row], query)) {
                best.insert(scan.ids[row], scores[row])
            }
            return (labelVocabulary, best.items)
        }
        // Every shot has some cosine to any query; a shot only the vectors found must be near
        // the query in absolute terms and not far below the best, or it is noise, not a hit.
        let best = vectorIDs.first?.1 ?? 0
        let floor = max(Float(query.minSimilarity), best - Float(Self.similarityMargin))
        let textIDs = Set(textRanks.keys)
        for (rank, (id, score)) in vectorIDs.enumerated() where textIDs.contains(id) || score >= floor {
            vectorRanks[id] = rank + 1
            similarities[id] = Double(score)
        }

        // The query's object and attribute words: those some shot's labels hold.
        let facets = terms.filter { vocabulary.contains($0) || vocabulary.contains(Self.singular($0)) }
        let ids = Set(textRanks.keys).union(vectorRanks.keys)
        guard !ids.isEmpty else { return [] }
        var hits = try details(of: Array(ids))
        for i in hits.indices {
            let id = hits[i].shotID
            hits[i].textRank = textRanks[id]
            hits[i].vectorRank = vectorRanks[id]
            hits[i].similarity = similarities[id]
            let fused = (textRanks[id].map { 1 / (Self.fusionK + Double($0)) } ?? 0) + (vectorRanks[id].map { 1 / (Self.fusionK + Double($0)) } ?? 0)
            let labelWords = hits[i].matchedLabels  // filled by details(of:) with the shot's words
            let held = facets.filter { labelWords.contains($0) || labelWords.contains(Self.singular($0)) }
            hits[i].matchedLabels = held
            // Facets dominate fusion scores (which are below 2/61): each held word is a step.
            hits[i].score = (facets.isEmpty ? 0 : Double(held.count) / Double(facets.count)) + fused
            hits[i].matchedTerms = terms.filter { term in
                let words = Self.words(hits[i].caption + " " + hits[i].text + " " + hits[i].speech).union(labelWords)
                return words.contains { $0 == term || $0.hasPrefix(Self.singular(term)) }
            }
        }
        hits.sort { ($0.score, -$0.start) > ($1.score, -$1.start) }
        return Array(hits.prefix(query.limit))
    }

    private func passes(_ row: RowInfo, _ query: SearchQuery) -> Bool {
        if let source = query.source {
            let names = videoNames[Int(row.video)]
            if !names.source.contains(source) && !names.location.contains(source) { return false }
        }
        if let from = query.from, row.end < from { return false }
        if let to = query.to, row.start > to { return false }
        switch query.kind {
        case nil: return true
        case .flags: return row.flagged
        case .faces: return row.faces > 0
        case .people: return row.people > 0
        case .text: return row.hasText
        }
    }

    private func fullText(terms: [String], query: SearchQuery) throws -> [Int64] {
        // Each word quoted: the user's text never becomes FTS5 syntax.
        let any = terms.map { "\"\($0.replacingOccurrences(of: "\"", with: ""))\"" }.joined(separator: " OR ")
        let match = query.kind == .text ? "ocr_text : (\(any))" : any
        var sql = """
            SELECT s.id FROM shots_fts f JOIN shots s ON s.id = f.rowid JOIN videos v ON v.id = s.video_id
            WHERE shots_fts MATCH ?
            """
        var arguments: StatementArguments = [match]
        if let source = query.source {
            sql += " AND (instr(v.source, ?) > 0 OR instr(v.location, ?) > 0)"
            arguments += [source, source]
        }
        if let from = query.from { sql += #" AND s."end" >= ?"#; arguments += [from] }
        if let to = query.to { sql += " AND s.start <= ?"; arguments += [to] }
        switch query.kind {
        case .flags: sql += " AND s.flagged = 1"
        case .faces: sql += " AND s.faces > 0"
        case .people: sql += " AND s.people > 0"
        case .text: sql += " AND s.ocr_text != ''"
        case nil: break
        }
        // Caption words weigh most; labels next; on-screen text least (it is often partial).
        sql += " ORDER BY bm25(shots_fts, 2.0, 1.0, 0.5, 1.0) LIMIT \(Self.candidates)"
        return try store.pool.read { db in try Int64.fetchAll(db, sql: sql, arguments: arguments) }
    }

    private func details(of ids: [Int64]) throws -> [SearchHit] {
        try store.pool.read { db in
            var hits: [SearchHit] = []
            for chunk in stride(from: 0, to: ids.count, by: 500).map({ Array(ids[$0..<min($0 + 500, ids.count)]) }) {
                let rows = try Row.fetchAll(db, sql: """
                    SELECT s.id, v.source, v.location, s.shot_index, s.start, s."end", s.caption, s.ocr_text, s.flagged, s.thumbnail, s.label_words, s.speech
                    FROM shots s JOIN videos v ON v.id = s.video_id WHERE s.id IN (\(chunk.map { _ in "?" }.joined(separator: ",")))
                    """, arguments: StatementArguments(chunk))
                for row in rows {
                    let thumbnail: String? = row[9]
                    let labelWords: String = row[10]
                    hits.append(SearchHit(shotID: row[0], source: row[1], location: row[2], shotIndex: row[3], start: row[4], end: row[5], caption: row[6],
                                          text: row[7], speech: row[11], flagged: row[8], matchedTerms: [], matchedLabels: Array(Self.words(labelWords)),
                                          textRank: nil, vectorRank: nil, similarity: nil, score: 0,
                                          thumbnail: thumbnail.map { store.folder.appendingPathComponent($0).path }))
                }
            }
            return hits
        }
    }

    /// Words a person types that say nothing about what is on screen.
    static let stopWords: Set<String> = [
        "a", "an", "the", "of", "in", "on", "at", "to", "with", "and", "or", "near", "by", "is", "are", "some", "someone", "something",
        "this", "that", "there", "shot", "scene", "video", "clip", "frame", "show", "shows", "showing", "find", "me", "for", "from", "wearing",
    ]

    /// The query's words, lowercased, stop words out, first occurrence order.
    static func terms(_ text: String) -> [String] {
        var seen = Set<String>()
        return text.lowercased().split { !$0.isLetter && !$0.isNumber }.map(String.init)
            .filter { !stopWords.contains($0) && seen.insert($0).inserted }
    }

    static func words(_ text: String) -> Set<String> {
        Set(text.lowercased().split { !$0.isLetter && !$0.isNumber }.map(String.init))
    }

    /// "cats" → "cat", "buses" → "bus"; enough to meet label words, which are singular.
    static func singular(_ word: String) -> String {
        if word.hasSuffix("ses") || word.hasSuffix("xes") { return String(word.dropLast(2)) }
        if word.hasSuffix("s") && !word.hasSuffix("ss") && word.count > 3 { return String(word.dropLast()) }
        return word
    }
}

/// The highest-scoring items seen, best first, at most `capacity` of them: the top of a
/// million scores without sorting them all.
struct TopScores {
    let capacity: Int
    private(set) var items: [(Int64, Float)] = []

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        items.reserveCapacity(self.capacity + 1)
    }

    func admits(_ score: Float) -> Bool { items.count < capacity || score > items[items.count - 1].1 }

    mutating func insert(_ id: Int64, _ score: Float) {
        guard admits(score) else { return }
        var i = items.count
        while i > 0 && items[i - 1].1 < score { i -= 1 }
        items.insert((id, score), at: i)
        if items.count > capacity { items.removeLast() }
    }
}
