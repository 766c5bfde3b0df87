import Foundation
import GRDB

/// One indexed video's shots, for exports and the review page.
public struct ShotList: Sendable, Equatable {
    public struct Shot: Sendable, Equatable {
        public var index: Int
        public var start: Double
        public var end: Double
        public var caption: String
        public var labelWords: String
        public var text: String
        public var people: Int
        public var faces: Int
        public var flagged: Bool
        /// Relative to the index folder.
        public var thumbnail: String?
    }

    public var source: String
    public var location: String
    public var duration: Double
    public var shots: [Shot]
}

extension IndexStore {
    /// Indexed videos: source id, location, duration, shot count, flagged shot count.
    public func videos() throws -> [(source: String, location: String, duration: Double, shots: Int, flagged: Int, live: Bool)] {
        try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT v.source, v.location, v.duration, v.live, count(s.id), coalesce(sum(s.flagged), 0)
                FROM videos v LEFT JOIN shots s ON s.video_id = v.id GROUP BY v.id ORDER BY v.location
                """).map { ($0[0], $0[1], $0[2], $0[4], $0[5], $0[3]) }
        }
    }

    /// The shots of the video whose source id or location is `name`, or whose location ends
    /// with it (`clip.mp4` finds `/videos/clip.mp4`). Several matches are an error naming them.
    public func shotList(for name: String) throws -> ShotList {
        let all = try videos()
        var matches = all.filter { $0.source == name || $0.location == name }
        if matches.isEmpty {
            let absolute = URL(fileURLWithPath: name).standardizedFileURL.path
            matches = all.filter { $0.location == absolute || $0.location.hasSuffix("/" + name) }
        }
        guard let video = matches.first else {
            throw IndexError.badQuery("no video '\(name)' in the index (\(all.count) indexed\(all.isEmpty ? "" : ", e.g. " + all.prefix(3).map(\.location).joined(separator: ", ")))")
        }
        guard matches.count == 1 else {
            throw IndexError.badQuery("'\(name)' matches \(matches.count) videos: \(matches.map(\.location).joined(separator: ", ")); give the full path or source id")
        }
        let shots = try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT s.shot_index, s.start, s."end", s.caption, s.label_words, s.ocr_text, s.people, s.faces, s.flagged, s.thumbnail
                FROM shots s JOIN videos v ON v.id = s.video_id WHERE v.source = ? ORDER BY s.start
                """, arguments: [video.source]).map {
                ShotList.Shot(index: $0[0], start: $0[1], end: $0[2], caption: $0[3], labelWords: $0[4], text: $0[5], people: $0[6], faces: $0[7],
                              flagged: $0[8], thumbnail: $0[9])
            }
        }
        return ShotList(source: video.source, location: video.location, duration: video.duration, shots: shots)
    }
}

/// Shot lists in the formats editors and PySceneDetect users know: CSV, CMX 3600 EDL,
/// OpenTimelineIO JSON and a standalone HTML page. Pure functions of the list.
public enum ShotExport {
    public enum Format: String, Sendable, CaseIterable {
        case csv, edl, otio, html
    }

    public static func render(_ list: ShotList, format: Format, fps: Double, thumbnailBase: String = "") -> String {
        switch format {
        case .csv: csv(list, fps: fps)
        case .edl: edl(list, fps: fps)
        case .otio: otio(list, fps: fps)
        case .html: html(list, fps: fps, thumbnailBase: thumbnailBase)
        }
    }

    static func frame(_ seconds: Double, fps: Double) -> Int { Int((seconds * fps).rounded()) }

    /// `HH:MM:SS.mmm`, PySceneDetect's timecode.
    static func timecode(_ seconds: Double) -> String {
        let ms = Int((max(0, seconds) * 1000).rounded())
        return String(format: "%02d:%02d:%02d.%03d", ms / 3_600_000, (ms / 60_000) % 60, (ms / 1000) % 60, ms % 1000)
    }

    /// `HH:MM:SS:FF`, an EDL's non-drop-frame timecode at an integer rate.
    static func smpte(_ seconds: Double, fps: Double) -> String {
        let rate = max(1, Int(fps.rounded()))
        let frames = Int((max(0, seconds) * Double(rate)).rounded())
        return String(format: "%02d:%02d:%02d:%02d", frames / (3600 * rate), (frames / (60 * rate)) % 60, (frames / rate) % 60, frames % rate)
    }

    static func csvField(_ text: String) -> String {
        text.contains { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" } ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
    }

    /// PySceneDetect's scene list columns (1-based scene numbers, end frame exclusive) plus ours.
    static func csv(_ list: ShotList, fps: Double) -> String {
        var lines = ["Scene Number,Start Frame,Start Timecode,Start Time (seconds),End Frame,End Timecode,End Time (seconds),Length (frames),Length (timecode),Length (seconds),Caption,Flagged,People,Text"]
        for (n, s) in list.shots.enumerated() {
            let a = frame(s.start, fps: fps), b = frame(s.end, fps: fps)
            lines.append([String(n + 1), String(a + 1), timecode(s.start), String(format: "%.3f", s.start), String(b), timecode(s.end), String(format: "%.3f", s.end),
                          String(b - a), timecode(s.end - s.start), String(format: "%.3f", s.end - s.start), csvField(s.caption), s.flagged ? "yes" : "no",
                          String(s.people), csvField(s.text.replacingOccurrences(of: "\n", with: " / "))].joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// CMX 3600: one cut event per shot, record times laid end to end from zero.
    static func edl(_ list: ShotList, fps: Double) -> String {
        let name = URL(fileURLWithPath: list.location).lastPathComponent
        var out = "TITLE: \(name.uppercased().prefix(70))\nFCM: NON-DROP FRAME\n\n"
        var record = 0.0
        for (n, s) in list.shots.enumerated() {
            let length = s.end - s.start
            out += String(format: "%03d  AX       V     C        ", n + 1)
                + "\(smpte(s.start, fps: fps)) \(smpte(s.end, fps: fps)) \(smpte(record, fps: fps)) \(smpte(record + length, fps: fps))\n"
            out += "* FROM CLIP NAME: \(name)\n"
            if !s.caption.isEmpty { out += "* COMMENT: \(s.caption.replacingOccurrences(of: "\n", with: " "))\n" }
            out += "\n"
            record += length
        }
        return out
    }

    /// OpenTimelineIO's JSON: a timeline with one video track, one clip per shot referring to
    /// the file, captions and flags in each clip's metadata.
    static func otio(_ list: ShotList, fps: Double) -> String {
        func time(_ seconds: Double) -> [String: Any] { ["OTIO_SCHEMA": "RationalTime.1", "rate": fps, "value": (seconds * fps).rounded()] }
        let url = list.location.contains("://") ? list.location : URL(fileURLWithPath: list.location).absoluteString
        let clips: [[String: Any]] = list.shots.map { s in
            [
                "OTIO_SCHEMA": "Clip.2", "name": "shot \(s.index)", "enabled": true, "effects": [], "markers": [],
                "metadata": ["sightline": ["caption": s.caption, "flagged": s.flagged, "people": s.people, "labels": s.labelWords, "text": s.text]],
                "source_range": ["OTIO_SCHEMA": "TimeRange.1", "start_time": time(s.start), "duration": time(s.end - s.start)],
                "media_references": ["DEFAULT_MEDIA": ["OTIO_SCHEMA": "ExternalReference.1", "name": "", "metadata": [:] as [String: Any], "available_range": NSNull(), "target_url": url]],
                "active_media_reference_key": "DEFAULT_MEDIA",
            ]
        }
        let timeline: [String: Any] = [
            "OTIO_SCHEMA": "Timeline.1", "name": URL(fileURLWithPath: list.location).lastPathComponent, "metadata": ["sightline": ["source": list.source]],
            "global_start_time": NSNull(),
            "tracks": ["OTIO_SCHEMA": "Stack.1", "name": "tracks", "metadata": [:] as [String: Any], "effects": [], "markers": [], "enabled": true, "source_range": NSNull(),
                       "children": [["OTIO_SCHEMA": "Track.1", "name": "shots", "kind": "Video", "metadata": [:] as [String: Any], "effects": [], "markers": [],
                                     "enabled": true, "source_range": NSNull(), "children": clips]]],
        ]
        let data = (try? JSONSerialization.data(withJSONObject: timeline, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// A page that needs nothing but the thumbnails (`thumbnailBase` is prepended to their
    /// index-relative paths).
    static func html(_ list: ShotList, fps: Double, thumbnailBase: String) -> String {
        var rows = ""
        for (n, s) in list.shots.enumerated() {
            let picture = s.thumbnail.map { "<img src=\"\(escape(thumbnailBase + $0))\" alt=\"shot \(s.index)\" width=\"160\">" } ?? ""
            rows += "<tr\(s.flagged ? " class=\"flagged\"" : "")><td>\(n + 1)</td><td>\(picture)</td><td>\(timecode(s.start))</td><td>\(timecode(s.end))</td>"
                + "<td>\(frame(s.start, fps: fps))–\(frame(s.end, fps: fps))</td><td>\(escape(s.caption))</td><td>\(escape(s.text).replacingOccurrences(of: "\n", with: "<br>"))</td></tr>\n"
        }
        let title = escape(URL(fileURLWithPath: list.location).lastPathComponent)
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Shots of \(title)</title>
            <style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}tr.flagged{background:#fde8e8}</style>
            </head><body><h1>\(title)</h1><p>\(list.shots.count) shots, \(escape(list.location))</p>
            <table><thead><tr><th>#</th><th>Frame</th><th>Start</th><th>End</th><th>Frames</th><th>Caption</th><th>On-screen text</th></tr></thead><tbody>
            \(rows)</tbody></table></body></html>

            """
    }
}
