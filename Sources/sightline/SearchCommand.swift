import ArgumentParser
import Foundation
import SightlineCore
import SightlineIndex
import SightlineKernels
import SightlineModels

struct SearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Search the results index for shots: full text (captions, labels, on-screen text) and meaning (MiniLM vectors), fused by rank.",
        discussion: """
            The index is written by the `index` node (Pipelines/batch.yaml writes it into its output folder).
            Each hit gives the file, the time span, the caption, why it matched and the thumbnail.

            Examples:
              sightline search "a cat on a sofa"
              sightline search "person in a red jacket near a car" --index out/ --limit 5
              sightline search "weapons" --kind flags --json
            """)

    @Argument(help: "What to look for, in plain words.") var query: String
    @Option(help: "Folder holding sightline-index.sqlite (default: ./ if it holds one, else ./sightline-batch).") var index: String?
    @Option(help: "Most hits to print.") var limit = 10
    @Option(help: "Only this file or source (a part of its path or source id).") var source: String?
    @Option(help: "Only shots ending at or after this time (seconds or m:ss).") var from: String?
    @Option(help: "Only shots starting at or before this time (seconds or m:ss).") var to: String?
    @Option(help: "Only shots with: \(SearchQuery.Kind.allCases.map(\.rawValue).joined(separator: ", ")).") var kind: String?
    @Option(help: "Shots found only by meaning need at least this cosine similarity to the query (and to be within 0.25 of the best).") var minSimilarity = 0.3
    @Flag(help: "One JSON object per hit.") var json = false
    @Flag(help: "Full-text only: skip the query's MiniLM embedding.") var textOnly = false
    @OptionGroup var cache: ModelCacheOption

    func run() throws {
        let folder = index ?? (FileManager.default.fileExists(atPath: IndexStore.fileName) ? "." : "sightline-batch")
        var search = SearchQuery(text: query, limit: limit, source: source)
        guard limit >= 1 else { throw ValidationError("--limit must be at least 1") }
        guard (-1...1).contains(minSimilarity) else { throw ValidationError("--min-similarity must be between -1 and 1") }
        search.minSimilarity = minSimilarity
        if let from {
            guard let t = MediaTime.seconds(parsing: from) else { throw ValidationError("--from '\(from)' is not a time (seconds, m:ss or h:mm:ss)") }
            search.from = t
        }
        if let to {
            guard let t = MediaTime.seconds(parsing: to) else { throw ValidationError("--to '\(to)' is not a time (seconds, m:ss or h:mm:ss)") }
            search.to = t
        }
        if let kind {
            guard let k = SearchQuery.Kind(rawValue: kind) else {
                throw ValidationError("--kind '\(kind)' is not one of \(SearchQuery.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            search.kind = k
        }
        let store = try IndexStore(folder: folder, create: false)
        let engine = SearchEngine(store: store)
        var vector: [Float]? = nil
        if !textOnly {
            KernelThreads.setBLASThreads(1)
            do {
                vector = try MiniLMEmbedder(store: cache.store).embed([query]).first
            } catch {
                FileHandle.standardError.write(Data("sightline: searching full text only: the query could not be embedded (\(error))\n".utf8))
            }
        }
        let hits = try engine.search(search, queryVector: vector)
        if json {
            for hit in hits { print(try Self.jsonLine(hit)) }
            return
        }
        if hits.isEmpty {
            print("no shots match \"\(query)\" in \(store.folder.path)")
            return
        }
        for (n, hit) in hits.enumerated() {
            print("\(n + 1). \(hit.location)  \(MediaTime.format(hit.start))–\(MediaTime.format(hit.end))  shot \(hit.shotIndex)\(hit.flagged ? "  [flagged]" : "")")
            if !hit.caption.isEmpty { print("   \(hit.caption)") }
            if !hit.speech.isEmpty { print("   said: \(hit.speech.count > 160 ? String(hit.speech.prefix(157)) + "…" : hit.speech)") }
            print("   why: \(Self.why(hit))")
            if let thumbnail = hit.thumbnail { print("   thumbnail: \(thumbnail)") }
        }
    }

    static func why(_ hit: SearchHit) -> String {
        var parts: [String] = []
        if !hit.matchedTerms.isEmpty { parts.append("words " + hit.matchedTerms.joined(separator: ", ")) }
        if !hit.matchedLabels.isEmpty { parts.append("seen " + hit.matchedLabels.joined(separator: ", ")) }
        if let rank = hit.textRank { parts.append("text rank \(rank)") }
        if let rank = hit.vectorRank { parts.append("meaning rank \(rank)" + (hit.similarity.map { String(format: " (cosine %.2f)", $0) } ?? "")) }
        return parts.isEmpty ? "-" : parts.joined(separator: "; ")
    }

    static func jsonLine(_ hit: SearchHit) throws -> String {
        struct Line: Encodable {
            var source: String, file: String, shot: Int, start: Double, end: Double, caption: String, text: String, speech: String, flagged: Bool
            var matched_terms: [String], matched_labels: [String], text_rank: Int?, vector_rank: Int?, similarity: Double?, score: Double
            var thumbnail: String?
        }
        let line = Line(source: hit.source, file: hit.location, shot: hit.shotIndex, start: hit.start, end: hit.end, caption: hit.caption, text: hit.text,
                        speech: hit.speech, flagged: hit.flagged, matched_terms: hit.matchedTerms, matched_labels: hit.matchedLabels, text_rank: hit.textRank,
                        vector_rank: hit.vectorRank, similarity: hit.similarity, score: hit.score, thumbnail: hit.thumbnail)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(line), as: UTF8.self)
    }
}
