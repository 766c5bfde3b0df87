import Foundation
import SightlineCore
import SightlineGraph
import SightlineModels

/// Builds one caption per segment from the evidence that arrived during it: ImageNet labels
/// averaged over the segment's sampled frames (with confidence), the on-screen text, and scene
/// context (how long, how much it moved). Pure: feed records, get captions at segment ends.
public struct CaptionComposer: Sendable {
    public struct Caption: Sendable, Equatable {
        public var start: Double
        public var end: Double
        public var text: String
        public var labels: [(String, Double)]
        public var onScreenText: [String]
        public var repeated: Bool

        public static func == (a: Caption, b: Caption) -> Bool {
            a.start == b.start && a.end == b.end && a.text == b.text && a.onScreenText == b.onScreenText && a.repeated == b.repeated
                && a.labels.map(\.0) == b.labels.map(\.0)
        }
    }

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
        return Caption(start: start, end: end, text: text, labels: Array(confident), onScreenText: texts, repeated: repeated)
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
            OptionSpec("policy", .string, default: .string(""), help: "moderation policy whose text terms are masked in captions (empty: none)"),
            OptionSpec("min_confidence", .double, default: .double(0.05), min: 0, max: 1, help: "labels averaged below this are left out (up to 3 are named, with their confidence)"),
        ])

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
            if window > 0 && record.kind != "shots" {
                let start = windowStart[source] ?? record.start
                windowStart[source] = start
                if record.start >= start + window {
                    if let caption = composer.finish(start: start, end: record.start, final: false) { emit(.record(captionRecord(caption, source: source, record: record))) }
                    windowStart[source] = record.start
                }
            }
            switch record.kind {
            case "labels":
                if case .array(let labels)? = record.fields["labels"] {
                    composer.add(labels: labels.compactMap { l in l["label"]?.stringValue.map { ($0, l["p"]?.doubleValue ?? 0) } }, at: record.start)
                }
            case "ocr":
                composer.add(text: record.fields["text"]?.stringValue ?? "", at: record.start)
            case "shots" where window == 0:
                // A shot that ended by a cut stops before the cut frame; the last shot includes its end.
                let isLast = record.fields["ended_by"]?.stringValue == "end"
                if let caption = composer.finish(start: record.start, end: record.end, final: isLast) { emit(.record(captionRecord(caption, source: source, record: record))) }
            default:
                break
            }
            lastTime[source] = max(lastTime[source] ?? record.end, record.end)
            composers[source] = composer
        case .endOfStream(let eos):
            if window > 0, var composer = composers[eos.sourceID], let start = windowStart[eos.sourceID],
               let caption = composer.finish(start: start, end: lastTime[eos.sourceID] ?? start) {
                emit(.record(captionRecord(caption, source: eos.sourceID, record: nil)))
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

    private func captionRecord(_ caption: CaptionComposer.Caption, source: String, record: Record?) -> Record {
        let (text, flagged) = mask(caption.text)
        var provenance = [Provenance(name: "captions-compose", version: "1")]
        if caption.labels.isEmpty == false { provenance.append(ModelNodeOptions.provenance(ModelZoo.efficientNetLite0)) }
        if !caption.onScreenText.isEmpty { provenance.append(ModelNodeOptions.provenance(ModelZoo.ppOCR)) }
        return Record(kind: "captions", sourceID: source, start: caption.start, end: caption.end, fields: [
            "caption": .string(text), "flagged": .bool(!flagged.isEmpty), "masked_terms": .array(flagged.map { .string($0) }),
            "repeated": .bool(caption.repeated),
            "evidence": .object([
                "labels": .array(caption.labels.map { .object(["label": .string($0.0), "p": .double(($0.1 * 1e4).rounded() / 1e4)]) }),
                "on_screen_text": .array(caption.onScreenText.map { .string(mask($0).0) }),
            ]),
        ], ingestWallClock: record?.ingestWallClock, provenance: provenance)
    }
}
