import Foundation
import GRDB
import SightlineCore

/// Moderation flags for people to check, and their verdicts: the audit trail of automated
/// decisions. Each verdict is a new row (who, when, what, why); the latest one for a flag is
/// its state, and earlier ones stay for the record.
public struct FlagForReview: Sendable, Equatable {
    public var id: Int64
    public var source: String
    public var location: String
    public var category: String
    public var start: Double
    public var end: Double
    public var peak: Double
    /// Media times of the frames that raised it.
    public var evidence: [Double]
    /// What the rule said (terms matched, thresholds).
    public var notes: [String]
    /// The shot the flag starts in, and its thumbnail (relative to the index folder).
    public var shotIndex: Int?
    public var thumbnail: String?
    public var latest: Verdict?
}

public struct Verdict: Sendable, Equatable {
    public enum Decision: String, Sendable, CaseIterable {
        case confirmed, dismissed
    }

    public var decision: Decision
    public var note: String
    public var reviewer: String
    /// Unix seconds.
    public var at: Double

    public init(decision: Decision, note: String, reviewer: String, at: Double) {
        self.decision = decision
        self.note = note
        self.reviewer = reviewer
        self.at = at
    }
}

/// One row of a verdict report.
public struct ReviewRecord: Sendable, Equatable {
    public var source: String
    public var location: String
    public var category: String
    public var start: Double
    public var end: Double
    public var peak: Double
    public var verdict: Verdict
}

extension IndexStore {
    /// Flags, oldest media first; `pending` keeps those without a verdict.
    public func flagsForReview(source: String? = nil, pending: Bool = false) throws -> [FlagForReview] {
        try pool.read { db in
            var sql = """
                SELECT f.id, v.source, v.location, f.category, f.start, f."end", f.peak, f.evidence, f.notes,
                       (SELECT s.shot_index FROM shots s WHERE s.video_id = v.id AND s.start <= f.start ORDER BY s.start DESC LIMIT 1),
                       (SELECT s.thumbnail FROM shots s WHERE s.video_id = v.id AND s.start <= f.start ORDER BY s.start DESC LIMIT 1),
                       r.verdict, r.note, r.reviewer, r.at
                FROM flags f JOIN videos v ON v.id = f.video_id
                LEFT JOIN reviews r ON r.id = (SELECT max(id) FROM reviews WHERE source = v.source AND category = f.category
                                               AND abs(start - f.start) < 0.001 AND abs("end" - f."end") < 0.001)
                """
            var arguments: StatementArguments = []
            var conditions: [String] = []
            if let source { conditions.append("v.source = ?"); arguments += [source] }
            if pending { conditions.append("r.id IS NULL") }
            if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
            sql += " ORDER BY v.location, f.start"
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                let decision: String? = row[11]
                return FlagForReview(
                    id: row[0], source: row[1], location: row[2], category: row[3], start: row[4], end: row[5], peak: row[6],
                    evidence: Self.decodeNumbers(row[7]), notes: Self.decodeStrings(row[8]), shotIndex: row[9], thumbnail: row[10],
                    latest: decision.flatMap(Verdict.Decision.init(rawValue:)).map { Verdict(decision: $0, note: row[12], reviewer: row[13], at: row[14]) })
            }
        }
    }

    /// Records a verdict on flag `id`; returns the flag as it now stands.
    @discardableResult
    public func record(_ verdict: Verdict, onFlag id: Int64) throws -> FlagForReview {
        let reviewer = verdict.reviewer.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reviewer.isEmpty, reviewer.count <= 200 else { throw IndexError.badQuery("a verdict needs the reviewer's name (at most 200 characters)") }
        guard verdict.note.count <= 4000 else { throw IndexError.badQuery("the note is longer than 4000 characters") }
        try pool.write { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT v.source, v.location, f.category, f.start, f."end", f.peak, f.evidence FROM flags f JOIN videos v ON v.id = f.video_id WHERE f.id = ?
                """, arguments: [id]) else {
                throw IndexError.badQuery("no flag \(id) (the video may have been re-indexed; reload the queue)")
            }
            try db.execute(sql: """
                INSERT INTO reviews (source, location, category, start, "end", peak, evidence, verdict, note, reviewer, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [row[0], row[1], row[2], row[3], row[4], row[5], row[6], verdict.decision.rawValue, verdict.note, reviewer, verdict.at])
        }
        guard let flag = try flagsForReview().first(where: { $0.id == id }) else { throw IndexError.badQuery("no flag \(id)") }
        return flag
    }

    /// Every verdict given (not only the latest), oldest first, optionally for one source or a
    /// period of wall-clock time: the report of what people decided.
    public func reviewReport(source: String? = nil, since: Double? = nil, until: Double? = nil) throws -> [ReviewRecord] {
        try pool.read { db in
            var sql = #"SELECT source, location, category, start, "end", peak, verdict, note, reviewer, at FROM reviews WHERE 1"#
            var arguments: StatementArguments = []
            if let source { sql += " AND (source = ? OR location = ?)"; arguments += [source, source] }
            if let since { sql += " AND at >= ?"; arguments += [since] }
            if let until { sql += " AND at <= ?"; arguments += [until] }
            sql += " ORDER BY at, id"
            return try Row.fetchAll(db, sql: sql, arguments: arguments).compactMap { row in
                guard let decision = Verdict.Decision(rawValue: row[6]) else { return nil }
                return ReviewRecord(source: row[0], location: row[1], category: row[2], start: row[3], end: row[4], peak: row[5],
                                    verdict: Verdict(decision: decision, note: row[7], reviewer: row[8], at: row[9]))
            }
        }
    }

    /// People and faces seen between `from` and `to` in a source (for boxes over a frame).
    public func detections(source: String, from: Double, to: Double, limit: Int = 2000) throws -> [IndexDocument.DetectionRow] {
        try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT d.time, d.kind, d.x, d.y, d.width, d.height, d.score, d.frame_width, d.frame_height, d.attributes
                FROM detections d JOIN videos v ON v.id = d.video_id WHERE v.source = ? AND d.time >= ? AND d.time <= ? ORDER BY d.time LIMIT ?
                """, arguments: [source, from, to, limit]).map { row in
                let attributes: String? = row[9]
                let decoded = attributes.flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0.utf8)) } ?? [:]
                return IndexDocument.DetectionRow(time: row[0], kind: row[1], box: PixelBox(x: row[2], y: row[3], width: row[4], height: row[5]), score: row[6],
                                                  frameWidth: row[7], frameHeight: row[8], attributes: decoded)
            }
        }
    }

    static func decodeNumbers(_ text: String) -> [Double] {
        (try? JSONDecoder().decode([Double].self, from: Data(text.utf8))) ?? []
    }

    static func decodeStrings(_ text: String) -> [String] {
        (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) ?? []
    }
}
