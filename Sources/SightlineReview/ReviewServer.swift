import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import SightlineCore
import SightlineIndex

/// The review page and its JSON API, served from one results index:
///
///     GET  /                              the page (HTML, CSS, JS from the package resources)
///     GET  /api/videos                    the library: every indexed video
///     GET  /api/shots?source=S            one video's shots (the filmstrip and timeline)
///     GET  /api/search?q=…&limit=&kind=&source=&from=&to=
///     GET  /api/detections?source=S&from=T&to=T   person and face boxes
///     GET  /api/flags?source=S&pending=1  the review queue
///     POST /api/flags/ID/verdict          {"decision": "confirmed"|"dismissed", "note": "…", "reviewer": "…"}
///     GET  /api/reviews?source=&since=&until=&format=json|csv   every verdict given
///     GET  /thumbnails/…                  shot thumbnails
///     GET  /api/live                      whether a live feed is relayed, and from where
///     WS   /live                          the live feed: one JSON text per bus message
///
/// Docs/review-api.yaml is the OpenAPI description.
public final class ReviewServer: Sendable {
    public let store: IndexStore
    private let engine: SearchEngine
    /// The query's embedding in the index's semantic space; nil: full-text only.
    private let embed: (@Sendable (String) -> [Float]?)?
    /// Told of every verdict (the command publishes them on the bus as `review` records).
    private let onVerdict: (@Sendable (FlagForReview) -> Void)?
    /// The bus relayed to the page's live view; nil: no live view.
    public let live: LiveFeed?

    public init(store: IndexStore, embed: (@Sendable (String) -> [Float]?)? = nil, onVerdict: (@Sendable (FlagForReview) -> Void)? = nil,
                live: LiveFeed? = nil) {
        self.store = store
        self.engine = SearchEngine(store: store)
        self.embed = embed
        self.onVerdict = onVerdict
        self.live = live
    }

    /// The HTTP/1 server with the live view's WebSocket upgrade on /live (plain HTTP/1 when
    /// there is no live feed).
    public var serverBuilder: HTTPServerBuilder {
        guard let live else { return .http1() }
        return .http1WebSocketUpgrade { request, _, _ in
            guard request.path == "/live" else { return .dontUpgrade }
            return .upgrade([:]) { inbound, outbound, _ in
                let (id, messages) = live.subscribe()
                defer { live.unsubscribe(id) }
                // Whichever ends first ends the view: the browser closing (inbound ends) or
                // the feed stopping (messages end).
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { for try await _ in inbound {} }
                    group.addTask { for await text in messages { try await outbound.write(.text(text)) } }
                    _ = try await group.next()
                    group.cancelAll()
                }
            }
        }
    }

    public func register(on router: Router<BasicRequestContext>) {
        router.get("/") { _, _ in try Self.resource("index.html", type: "text/html; charset=utf-8") }
        router.get("static/:name") { _, context in
            let name = context.parameters.get("name") ?? ""
            switch name {
            case "app.js": return try Self.resource(name, type: "text/javascript; charset=utf-8")
            case "app.css": return try Self.resource(name, type: "text/css; charset=utf-8")
            default: return Self.error(.notFound, "no such file")
            }
        }
        router.get("api/live") { _, _ in
            Self.json(.ok, ["enabled": self.live != nil, "endpoint": self.live?.endpoint ?? NSNull(), "path": "/live"])
        }
        router.get("api/videos") { _, _ in
            let videos = try self.store.videos().map { v -> [String: Any] in
                ["source": v.source, "location": v.location, "name": URL(fileURLWithPath: v.location).lastPathComponent, "duration": v.duration,
                 "shots": v.shots, "flagged": v.flagged, "live": v.live]
            }
            return Self.json(.ok, ["videos": videos])
        }
        router.get("api/shots") { request, _ in
            guard let source = request.uri.queryParameters["source"].map(String.init) else { return Self.error(.badRequest, "source= is required") }
            do {
                let list = try self.store.shotList(for: source)
                return Self.json(.ok, [
                    "source": list.source, "location": list.location, "duration": list.duration,
                    "shots": list.shots.map { s -> [String: Any] in
                        ["index": s.index, "start": s.start, "end": s.end, "caption": s.caption, "labels": s.labelWords, "text": s.text, "people": s.people,
                         "faces": s.faces, "flagged": s.flagged, "thumbnail": s.thumbnail.map { "/" + $0 } ?? NSNull()]
                    },
                    "flags": try self.store.flagsForReview(source: list.source).map(Self.object),
                ])
            } catch let error as IndexError {
                return Self.error(.notFound, error.message)
            }
        }
        router.get("api/search") { request, _ in
            let q = request.uri.queryParameters
            guard let text = q["q"].map(String.init), !text.trimmingCharacters(in: .whitespaces).isEmpty else { return Self.error(.badRequest, "q= is required") }
            var query = SearchQuery(text: text, limit: min(100, q["limit"].flatMap { Int($0) } ?? 20), source: q["source"].map(String.init))
            if let kind = q["kind"], !kind.isEmpty {
                guard let k = SearchQuery.Kind(rawValue: String(kind)) else { return Self.error(.badRequest, "kind must be one of \(SearchQuery.Kind.allCases.map(\.rawValue).joined(separator: ", "))") }
                query.kind = k
            }
            query.from = q["from"].flatMap { MediaTime.seconds(parsing: String($0)) }
            query.to = q["to"].flatMap { MediaTime.seconds(parsing: String($0)) }
            do {
                let hits = try self.engine.search(query, queryVector: self.embed?(text))
                return Self.json(.ok, ["query": text, "hits": hits.map { h -> [String: Any] in
                    ["source": h.source, "location": h.location, "shot": h.shotIndex, "start": h.start, "end": h.end, "caption": h.caption, "text": h.text,
                     "flagged": h.flagged, "matched_terms": h.matchedTerms, "matched_labels": h.matchedLabels, "text_rank": h.textRank ?? NSNull(),
                     "vector_rank": h.vectorRank ?? NSNull(), "similarity": h.similarity ?? NSNull(), "score": h.score,
                     "thumbnail": h.thumbnail.map { self.thumbnailURL($0) } ?? NSNull()]
                }])
            } catch let error as IndexError {
                return Self.error(.badRequest, error.message)
            }
        }
        router.get("api/detections") { request, _ in
            let q = request.uri.queryParameters
            guard let source = q["source"].map(String.init), let from = q["from"].flatMap({ Double($0) }), let to = q["to"].flatMap({ Double($0) }), from <= to else {
                return Self.error(.badRequest, "source=, from= and to= (seconds, from ≤ to) are required")
            }
            let rows = try self.store.detections(source: source, from: from, to: to)
            return Self.json(.ok, ["detections": rows.map { d -> [String: Any] in
                ["time": d.time, "kind": d.kind, "x": d.box.x, "y": d.box.y, "width": d.box.width, "height": d.box.height, "score": d.score,
                 "frame_width": d.frameWidth, "frame_height": d.frameHeight, "attributes": d.attributes]
            }])
        }
        router.get("api/flags") { request, _ in
            let q = request.uri.queryParameters
            let flags = try self.store.flagsForReview(source: q["source"].map(String.init), pending: q["pending"] == "1" || q["pending"] == "true")
            return Self.json(.ok, ["flags": flags.map(Self.object)])
        }
        router.post("api/flags/:id/verdict") { request, context in
            guard let id = context.parameters.get("id").flatMap({ Int64($0) }) else { return Self.error(.badRequest, "the flag id must be a number") }
            let body = try await request.body.collect(upTo: 16 * 1024)
            guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
                  let decision = (object["decision"] as? String).flatMap(Verdict.Decision.init(rawValue:)) else {
                return Self.error(.badRequest, "the body must be {\"decision\": \"confirmed\" or \"dismissed\", \"note\": \"…\", \"reviewer\": \"…\"}")
            }
            let verdict = Verdict(decision: decision, note: object["note"] as? String ?? "", reviewer: object["reviewer"] as? String ?? "",
                                  at: Date().timeIntervalSince1970)
            do {
                let flag = try self.store.record(verdict, onFlag: id)
                self.onVerdict?(flag)
                return Self.json(.created, Self.object(flag))
            } catch let error as IndexError {
                if case .badQuery(let reason) = error, reason.hasPrefix("no flag") { return Self.error(.notFound, reason) }
                return Self.error(.badRequest, error.message)
            }
        }
        router.get("api/reviews") { request, _ in
            let q = request.uri.queryParameters
            let report = try self.store.reviewReport(source: q["source"].map(String.init), since: q["since"].flatMap { Double($0) },
                                                     until: q["until"].flatMap { Double($0) })
            if q["format"] == "csv" {
                return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8"],
                                body: .init(byteBuffer: ByteBuffer(string: ReviewReport.csv(report))))
            }
            return Self.json(.ok, ["reviews": report.map(ReviewReport.object)])
        }
        router.get("thumbnails/**") { _, context in
            let parts = context.parameters.getCatchAll().map(String.init)
            // Only pictures under thumbnails/: no parent steps, no hidden files, JPEG only.
            guard !parts.isEmpty, parts.allSatisfy({ !$0.hasPrefix(".") && !$0.contains("\\") }), parts.last?.hasSuffix(".jpg") == true else {
                return Self.error(.notFound, "no such thumbnail")
            }
            let url = self.store.folder.appendingPathComponent(IndexStore.thumbnailFolder).appendingPathComponent(parts.joined(separator: "/"))
            guard let data = try? Data(contentsOf: url) else { return Self.error(.notFound, "no such thumbnail") }
            return Response(status: .ok, headers: [.contentType: "image/jpeg", .cacheControl: "max-age=3600"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }

    /// The web path of a thumbnail the search engine gives as a file path.
    private func thumbnailURL(_ path: String) -> String {
        let base = store.folder.path + "/"
        return path.hasPrefix(base) ? "/" + path.dropFirst(base.count) : path
    }

    static func object(_ f: FlagForReview) -> [String: Any] {
        var object: [String: Any] = [
            "id": f.id, "source": f.source, "location": f.location, "category": f.category, "start": f.start, "end": f.end, "peak": f.peak,
            "evidence": f.evidence, "notes": f.notes, "shot": f.shotIndex ?? NSNull(), "thumbnail": f.thumbnail.map { "/" + $0 } ?? NSNull(),
        ]
        if let v = f.latest {
            object["verdict"] = ["decision": v.decision.rawValue, "note": v.note, "reviewer": v.reviewer, "at": v.at]
        }
        return object
    }

    static func resource(_ name: String, type: String) throws -> Response {
        guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Resources") ?? Bundle.module.url(forResource: name, withExtension: nil),
              let data = try? Data(contentsOf: url) else {
            return error(.internalServerError, "the page's file \(name) is missing from this build's resources")
        }
        return Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func json(_ status: HTTPResponse.Status, _ object: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: Array(data) + [UInt8(ascii: "\n")])))
    }

    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        json(status, ["error": message])
    }
}

/// Verdict reports (`GET /api/reviews`, `sightline export reviews`).
public enum ReviewReport {
    public static func object(_ r: ReviewRecord) -> [String: Any] {
        ["source": r.source, "location": r.location, "category": r.category, "start": r.start, "end": r.end, "peak": r.peak,
         "decision": r.verdict.decision.rawValue, "note": r.verdict.note, "reviewer": r.verdict.reviewer, "at": r.verdict.at,
         "at_utc": ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: r.verdict.at))]
    }

    public static func csv(_ report: [ReviewRecord]) -> String {
        func field(_ text: String) -> String {
            text.contains { $0 == "," || $0 == "\"" || $0 == "\n" } ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        let formatter = ISO8601DateFormatter()
        var lines = ["at_utc,reviewer,decision,category,file,start,end,peak,note"]
        for r in report {
            lines.append([formatter.string(from: Date(timeIntervalSince1970: r.verdict.at)), field(r.verdict.reviewer), r.verdict.decision.rawValue, field(r.category),
                          field(r.location), String(format: "%.3f", r.start), String(format: "%.3f", r.end), String(format: "%.3f", r.peak), field(r.verdict.note)]
                .joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
