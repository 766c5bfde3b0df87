import Foundation
import SightlineCore
import SightlineGraph
import SightlineModels

/// Builds one caption per segment from the evidence that arrived during it: ImageNet labels
/// averaged over the segment's sampled frames (with confidence), the on-screen text, and scene
/// context (how long, how much it moved). Pure: feed evidence, get captions at segment ends
/// (unmasked: the node applies the moderation policy's word list).
public struct CaptionComposer: Sendable {
    public var minConfidence: Double
    /// Evidence with its media time: a segment takes what falls before its end and leaves the
    /// rest for the next one (a shot boundary can be confirmed after the next frame went by).
    private var timedLabels: [(time: Double, labels: [(String, Double)])] = []
    private var timedTexts: [(time: Double, text: String)] = []
    private var previousTopLabel: String?
    private var previousText: [String] = []

    public init(minConfidence: Double = 0.05) {
        self.minConfidence = minConfidence
    }

    public mutating func add(labels: [(String, Double)], at time: Double = 0) {
        timedLabels.append((time, labels))
    }

    public mutating func add(text: String, at time: Double = 0) {
        timedTexts.append((time, text))
    }

    /// The caption for the segment [start, end) (or [start, end] when `final`), from the evidence
    /// timed inside it; nil when nothing was seen in it.
    public mutating func finish(start: Double, end: Double, final: Bool = true) -> Caption? {
        let inside = { (t: Double) in final ? t <= end : t < end }
        let labelsHere = timedLabels.filter { inside($0.time) }
        let textsHere = timedTexts.filter { inside($0.time) }
        timedLabels.removeAll { inside($0.time) }
        timedTexts.removeAll { inside($0.time) }
        var labelSums: [String: Double] = [:]
        for entry in labelsHere { for (name, p) in entry.labels { labelSums[name, default: 0] += p } }
        let frames = labelsHere.count
        var texts: [String] = []
        for entry in textsHere {
            for line in entry.text.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) where !line.isEmpty && !texts.contains(line) {
                texts.append(line)
            }
        }
        guard frames > 0 || !texts.isEmpty else { return nil }
        let averaged = labelSums.map { ($0.key, $0.value / Double(max(frames, 1))) }.sorted { $0.1 > $1.1 }
        let confident = averaged.filter { $0.1 >= minConfidence }.prefix(3)
        var parts: [String] = []
        let top = confident.first?.0
        // Adjacent segments that show the same thing say so instead of repeating themselves.
        let repeated = top != nil && top == previousTopLabel && texts == previousText
        if let top, let topP = confident.first?.1 {
            // Confidence in the words: the top label's share, and the runners-up with theirs.
            let others = confident.dropFirst().map { "\($0.0) \(percent($0.1))" }
            let what = others.isEmpty ? "\(top) (\(percent(topP)))" : "\(top) (\(percent(topP)); or \(others.joined(separator: ", ")))"
            parts.append(repeated ? "Still showing \(article(top)) \(what)" : "Shows \(article(top)) \(what)")
        } else if frames > 0 {
            parts.append("Unclear scene")
        }
        if !texts.isEmpty {
            parts.append("on-screen text “\(texts.joined(separator: " / "))”")
        }
        let seconds = end - start
        parts.append(String(format: seconds < 2 ? "a %.1f s shot" : "a %.0f s shot", seconds))
        previousTopLabel = top
        previousText = texts
        let text = parts.joined(separator: ", ") + "."
        return Caption(text: text, maskedTerms: [], repeated: repeated, labels: confident.map { (name: $0.0, probability: $0.1) }, onScreenText: texts)
    }

    private func percent(_ p: Double) -> String { "\(Int((p * 100).rounded()))%" }

    private func article(_ phrase: String) -> String {
        guard let first = phrase.lowercased().first else { return "a" }
        return "aeiou".contains(first) ? "an" : "a"
    }
}

/// `captions`: one caption per shot (from an upstream `shots` node) or per fixed window,
/// composed from `labels` and `ocr` records, passed through the moderation policy's word list:
/// flagged words are masked and the caption is marked flagged, never dropped.
public final class CaptionsNode: NodeProcessor {
    private var composers: [String: CaptionComposer] = [:]
    private var windowStart: [String: Double] = [:]
    private var lastTime: [String: Double] = [:]
    private let window: Double
    private let maskedTerms: [String]
    private let minConfidence: Double

    public static let descriptor = NodeDescriptor(
        name: "captions",
        description: "A caption per shot (or per window) from labels and on-screen text, with evidence; flagged words masked (kind `captions`).",
        role: .transform, inputs: .records, outputs: .records,
        options: [
            OptionSpec("window", .double, default: .double(0), min: 0, max: 3600, help: "fixed window in seconds; 0: use `shots` records from a shots node"),
            OptionSpec("policy", .inputFile, default: .string(""),
                       help: "moderation policy whose text terms are masked in captions (relative to the pipeline's folder; empty: none)",
                       checkFile: { _ = try ModerationPolicy.load(path: $0) }),
            OptionSpec("min_confidence", .double, default: .double(0.05), min: 0, max: 1, help: "labels averaged below this are left out (up to 3 are named, with their confidence)"),
        ],
        contract: NodeContract(needs: [
            .init(anyOf: [.labels], hint: "add a labels node before it: captions name what the labels node sees"),
            .init(anyOf: [.shots], when: .init("window", is: .double(0)),
                  hint: "add a shots node before it (one caption per shot), or set window: SECONDS for fixed windows"),
        ], produces: [.init(.captions)]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        var terms: [String] = []
        if let path = options.string("policy"), !path.isEmpty {
            for category in try ModerationPolicy.load(path: path).categories {
                if case .text(let words) = category.rule { terms += words }
            }
        }
        return .processor(CaptionsNode(window: options.double("window") ?? 0, maskedTerms: terms, minConfidence: options.double("min_confidence") ?? 0.05))
    }

    init(window: Double, maskedTerms: [String], minConfidence: Double) {
        self.window = window
        self.maskedTerms = maskedTerms
        self.minConfidence = minConfidence
    }

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        switch item {
        case .record(let record):
            emit(item)
            let source = record.sourceID
            var composer = composers[source] ?? CaptionComposer(minConfidence: minConfidence)
            if window > 0 && record.kind != .shots {
                let start = windowStart[source] ?? record.start
                windowStart[source] = start
                if record.start >= start + window {
                    if let caption = composer.finish(start: start, end: record.start, final: false) {
                        emit(.record(captionRecord(caption, source: source, start: start, end: record.start, record: record)))
                    }
                    windowStart[source] = record.start
                }
            }
            switch record.value {
            case .labels(let labels):
                composer.add(labels: labels.top.map { ($0.name, $0.probability) }, at: record.start)
            case .ocr(let text):
                composer.add(text: text.text, at: record.start)
            case .shot(let shot) where window == 0:
                // A shot that ended by a cut stops before the cut frame; the last shot includes its end.
                if let caption = composer.finish(start: record.start, end: record.end, final: shot.includesEnd) {
                    emit(.record(captionRecord(caption, source: source, start: record.start, end: record.end, record: record)))
                }
            default:
                break
            }
            lastTime[source] = max(lastTime[source] ?? record.end, record.end)
            composers[source] = composer
        case .endOfStream(let eos):
            if window > 0, var composer = composers[eos.sourceID], let start = windowStart[eos.sourceID] {
                let end = lastTime[eos.sourceID] ?? start
                if let caption = composer.finish(start: start, end: end) {
                    emit(.record(captionRecord(caption, source: eos.sourceID, start: start, end: end, record: nil)))
                }
            }
            composers[eos.sourceID] = nil
            windowStart[eos.sourceID] = nil
        case .frame, .status:
            emit(item)
        }
    }

    /// Masks whole words on the policy's list (keeping their first letter) and says so.
    func mask(_ text: String) -> (String, [String]) {
        var out = text
        var flagged: [String] = []
        for term in maskedTerms where !term.isEmpty {
            let pattern = "(?i)\\b" + NSRegularExpression.escapedPattern(for: term) + "\\b"
            guard let regex = try? NSRegularExpression(pattern: pattern) else { continue }
            let range = NSRange(out.startIndex..., in: out)
            if regex.firstMatch(in: out, range: range) != nil {
                flagged.append(term)
                out = regex.stringByReplacingMatches(in: out, range: range, withTemplate: String(term.prefix(1)) + String(repeating: "*", count: max(term.count - 1, 1)))
            }
        }
        return (out, flagged)
    }

    private func captionRecord(_ composed: Caption, source: String, start: Double, end: Double, record: Record?) -> Record {
        var caption = composed
        (caption.text, caption.maskedTerms) = mask(composed.text)
        caption.onScreenText = composed.onScreenText.map { mask($0).0 }
        var provenance = [Provenance(name: "captions-compose", version: "1")]
        if !caption.labels.isEmpty { provenance.append(ModelNodeOptions.provenance(ModelZoo.efficientNetLite0)) }
        if !caption.onScreenText.isEmpty { provenance.append(ModelNodeOptions.provenance(ModelZoo.ppOCR)) }
        return Record(.caption(caption), sourceID: source, start: start, end: end, ingestWallClock: record?.ingestWallClock, provenance: provenance)
    }
}
