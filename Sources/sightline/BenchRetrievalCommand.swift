import ArgumentParser
import Foundation
import SightlineCore
import SightlineMedia
import SightlineModels

/// `bench retrieval`: how well text queries find the right picture, by how the frame vector is
/// made — ConSE over the top labels, the learned ridge alignment of the 1280-d feature, and a
/// blend — on a labelled set of queries over the bundled photos and clips
/// (Samples/retrieval-set.json). Prints recall@1 and MRR per method, and the alignment's
/// held-out-class accuracy per ridge strength (how its default was chosen, without looking at
/// the retrieval set).
struct BenchRetrievalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retrieval",
        abstract: "Text-to-video retrieval quality (recall@1, MRR) of ConSE, the learned alignment and their blend on a labelled set of queries.")

    @Option(help: "The labelled set (items and queries).") var set = repositoryFile("Samples/retrieval-set.json")
    @Option(help: "Frames pooled per clip item.") var framesPerClip = 6
    @Option(help: "Ridge strengths to check on held-out classes, comma-separated (fractions of the mean Gram diagonal).")
    var lambdas = "0.01,0.03,0.1,0.3,1"
    @Option(help: "Labels per frame for ConSE (batch.yaml uses 5).") var top = 5

    struct LabelledSet: Decodable {
        struct Item: Decodable { var id: String; var file: String }
        struct Query: Decodable { var text: String; var relevant: [String] }
        var items: [Item]
        var queries: [Query]
    }

    func run() throws {
        guard framesPerClip >= 1, framesPerClip <= 100 else { throw ValidationError("--frames-per-clip: 1 to 100") }
        guard top >= 1, top <= 50 else { throw ValidationError("--top: 1 to 50") }
        let ridges = lambdas.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !ridges.isEmpty, ridges.allSatisfy({ $0 > 0 }) else { throw ValidationError("--lambdas: positive numbers, comma-separated") }
        guard let data = FileManager.default.contents(atPath: set) else { throw ValidationError("no labelled set at \(set)") }
        let labelled: LabelledSet
        do { labelled = try JSONDecoder().decode(LabelledSet.self, from: data) } catch { throw ValidationError("\(set): \(error)") }
        let ids = Set(labelled.items.map(\.id))
        guard ids.count == labelled.items.count, !labelled.queries.isEmpty else { throw ValidationError("\(set): item ids must be unique and there must be queries") }
        for query in labelled.queries where !query.relevant.allSatisfy(ids.contains) {
            throw ValidationError("\(set): query \"\(query.text)\" names an item that is not in the set")
        }

        print("bench retrieval on \(cpuName()): \(labelled.items.count) items, \(labelled.queries.count) queries (\(set))")
        let store = ModelStore()
        let classifier = try EfficientNetLite0(store: store, threads: ProcessInfo.processInfo.activeProcessorCount)
        let text = try MiniLMEmbedder(store: store)

        // 1. The ridge strength, chosen on classes the fit did not see.
        let head = try VisualTextAlignment.headRows(store: store)
        let classTexts = try VisualTextAlignment.classTexts()
        var began = Date()
        let classVectors = try text.embed(classTexts)
        print(String(format: "class texts embedded in %.1f s", Date().timeIntervalSince(began)))
        print("held-out classes (fit on 4 of 5 folds, rank each held-out class's own text among the held-out texts):")
        print("  ridge    top-1    top-5    fit s")
        for ridge in ridges {
            let (top1, top5, seconds) = try heldOut(head: head, targets: classVectors, ridge: ridge)
            print(String(format: "  %-8g %-8.3f %-8.3f %.1f%@", ridge, top1, top5, seconds, ridge == VisualTextAlignment.defaultRidge ? "   (default)" : ""))
        }
        began = Date()
        let alignment = try VisualTextAlignment.load(store: store, embedder: text)
        print(String(format: "alignment (ridge %g, centred logits %@) loaded or fitted in %.1f s", VisualTextAlignment.defaultRidge,
                     VisualTextAlignment.defaultCentring ? "yes" : "no", Date().timeIntervalSince(began)))

        // 2. Per item: each frame's 1280-d feature and ConSE vector.
        var labelCache: [String: [Float]] = [:]
        var items: [(features: [[Float]], conse: [[Float]])] = []
        for item in labelled.items {
            let frames = try Self.frames(of: item.file, count: framesPerClip)
            guard !frames.isEmpty else { throw ValidationError("\(item.file): no frames decoded") }
            var entry: (features: [[Float]], conse: [[Float]]) = ([], [])
            for result in try classifier.classify(frames) {
                let labels = result.top(top).map { (name: $0.label, probability: $0.probability) }
                let missing = labels.map(\.name).filter { labelCache[$0] == nil }
                if !missing.isEmpty { for (name, v) in zip(missing, try text.embed(missing)) { labelCache[name] = v } }
                entry.features.append(result.features)
                entry.conse.append(SemanticVectors.conse(labels, embedding: { labelCache[$0] }).vector)
            }
            items.append(entry)
        }
        let queryVectors = try text.embed(labelled.queries.map(\.text))

        /// Shots pool frames as segment_embeddings does: the mean of unit vectors.
        func pooled(_ frameVectors: [[Float]]) -> [Float] {
            SemanticVectors.unit(frameVectors.map(SemanticVectors.unit).reduce([Float](repeating: 0, count: frameVectors.first?.count ?? 0)) { zip($0, $1).map { $0 + $1 } })
        }
        func score(_ vectors: [[Float]]) -> (recall: Double, mrr: Double, misses: [String]) {
            var hits = 0.0, reciprocal = 0.0
            var misses: [String] = []
            for (query, q) in zip(labelled.queries, queryVectors) {
                let ranked = vectors.enumerated().map { ($0.offset, zip($0.element, q).reduce(Float(0)) { $0 + $1.0 * $1.1 }) }.sorted { $0.1 > $1.1 }
                let rank = (ranked.firstIndex { query.relevant.contains(labelled.items[$0.0].id) } ?? ranked.count) + 1
                if rank == 1 { hits += 1 } else { misses.append("\"\(query.text)\"→\(labelled.items[ranked[0].0].id)") }
                reciprocal += 1 / Double(rank)
            }
            let n = Double(labelled.queries.count)
            return (hits / n, reciprocal / n, misses)
        }

        // 3. The shipped methods.
        print("method     recall@1  MRR      misses at rank 1")
        var summary: [(SemanticVectors.Method, Double, Double)] = []
        for method in SemanticVectors.Method.allCases {
            let vectors = items.map { item in
                pooled(zip(item.features, item.conse).map { features, conse in
                    switch method {
                    case .conse: return conse
                    case .aligned: return alignment.project(features)
                    case .blend: return SemanticVectors.blend(conse, alignment.project(features))
                    }
                })
            }
            let (recall, mrr, misses) = score(vectors)
            summary.append((method, recall, mrr))
            print(method.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0) + String(format: "%-9.3f %-8.3f ", recall, mrr) + misses.prefix(5).joined(separator: ", ") + (misses.count > 5 ? ", …" : ""))
        }
        if let best = summary.max(by: { ($0.2, $0.1) < ($1.2, $1.1) }) {
            print("best by MRR: \(best.0.rawValue) (space \(best.0.space)); the semantic node's default method is \(SemanticVectors.defaultMethod.rawValue)")
        }

        // 4. Sensitivity of the aligned vectors to the fit's settings (not used to pick them).
        print("aligned-map sensitivity on this set (ridge × logit centring × text centring; aligned alone, and blended with ConSE):")
        print("  ridge    logits   texts    aligned R@1/MRR   blend R@1/MRR")
        for ridge in ridges {
            for (centre, centreTexts) in [(false, false), (true, false), (true, true)] {
                let matrix = try VisualTextAlignment.fit(head: head, targets: classVectors.flatMap { $0 }, classes: classVectors.count, ridge: ridge,
                                                         centreLogits: centre, centreTargets: centreTexts)
                let map = try VisualTextAlignment(matrix: matrix, digest: "sweep")
                let aligned = score(items.map { pooled($0.features.map(map.project)) })
                let blend = score(items.map { item in pooled(zip(item.features, item.conse).map { SemanticVectors.blend($1, map.project($0)) }) })
                print(String(format: "  %-8g ", ridge) + (centre ? "yes" : "no").padding(toLength: 9, withPad: " ", startingAt: 0)
                      + (centreTexts ? "yes" : "no").padding(toLength: 9, withPad: " ", startingAt: 0)
                      + String(format: "%.3f / %.3f     %.3f / %.3f", aligned.recall, aligned.mrr, blend.recall, blend.mrr))
            }
        }
    }

    /// Held-out classes: five folds; fit on four, project each held-out class's weight row and
    /// rank its own text among the fold's texts.
    func heldOut(head: [Float], targets: [[Float]], ridge: Double) throws -> (Double, Double, Double) {
        let classes = targets.count, width = VisualTextAlignment.inputDimension, dimension = VisualTextAlignment.outputDimension
        var top1 = 0, top5 = 0
        var seconds = 0.0
        for fold in 0..<5 {
            let train = (0..<classes).filter { $0 % 5 != fold }, test = (0..<classes).filter { $0 % 5 == fold }
            let began = Date()
            let matrix = try VisualTextAlignment.fit(head: train.flatMap { Array(head[($0 * width)..<(($0 + 1) * width)]) },
                                                     targets: train.flatMap { targets[$0] }, classes: train.count, ridge: ridge)
            seconds += Date().timeIntervalSince(began)
            let map = try VisualTextAlignment(matrix: matrix, digest: "held-out")
            for c in test {
                let projected = map.project(Array(head[(c * width)..<((c + 1) * width)]))
                let own = zip(projected, targets[c]).reduce(Float(0)) { $0 + $1.0 * $1.1 }
                let above = test.filter { other in other != c && zip(projected, targets[other]).reduce(Float(0)) { $0 + $1.0 * $1.1 } > own }.count
                if above == 0 { top1 += 1 }
                if above < 5 { top5 += 1 }
            }
            _ = dimension
        }
        return (Double(top1) / Double(classes), Double(top5) / Double(classes), seconds / 5)
    }

    /// Evenly spaced frames of a clip (one for a still picture). "photos/NAME" is in the sample
    /// photo cache; other names are fetched by Scripts/fetch-sample.
    static func frames(of file: String, count: Int) throws -> [Frame] {
        let path: String
        if file.hasPrefix("photos/") {
            path = cacheRoot() + "/samples/" + file
            guard FileManager.default.fileExists(atPath: path) else {
                throw ValidationError("no sample photo at \(path): the test command fetches the photos (Scripts/test), or copy one there")
            }
        } else if file.hasPrefix("/") {
            path = file
        } else {
            path = try BenchDeltaCommand.sample(file)
        }
        let duration = (try? MediaProbe.probe(url: path))?.durationSeconds ?? 0
        if duration < 0.5 { return try BenchDeltaCommand.decode(path, fps: 1, limit: 1) }
        let fps = Double(count) / duration
        return Array(try BenchDeltaCommand.decode(path, fps: fps, limit: count))
    }
}
