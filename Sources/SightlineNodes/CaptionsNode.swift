import Foundation
import SightlineCore
import SightlineGraph
import SightlineModels

/// Builds one caption per segment from the evidence that arrived during it, every phrase
/// keeping its evidence:
/// - people and faces: how many (tracks, else detections), where they went (track paths),
///   who entered or left;
/// - objects: the hedged WordNet concepts of the whole frame and its crops, named when they
///   hold over the segment;
/// - on-screen text: one best reading per text track, the most salient few quoted;
/// - speech: what a transcript says during the segment, quoted briefly;
/// - the camera (static, pan, tilt, shake) and the segment's length.
/// With nothing clear to name it says "Unclear scene" rather than guess. Pure: feed evidence,
/// get captions at segment ends (unmasked: the node applies the moderation policy's word list).
public struct CaptionComposer: Sendable {
    public var minConfidence: Double
    /// Lines of on-screen text quoted at most (the rest are counted).
    public var quoteLines: Int
    /// A concept is named when it was seen in at least this share of the segment's frames.
    public var minSupport: Double
    /// Without hedged concepts, a top label this sure is named (the labels node's hedge bar).
    public var minMass = 0.5
    /// A leading class this likely, but below the bar, is named as a possibility.
    public var minTentative = 0.25
    public var camera = CameraMotion()
    /// Characters of speech quoted at most (the rest is in the transcripts).
    public var speechQuote = 80

    private struct Timed<T: Sendable>: Sendable {
        var time: Double
        var value: T
    }

    private var labels: [Timed<Labels>] = []
    private var texts: [Timed<OnScreenText>] = []
    private var snapshots: [Timed<TrackSnapshot>] = []
    private var detections: [Timed<(label: String, count: Int)>] = []
    /// Upper-body colour names of the people detected in a frame.
    private var clothing: [Timed<[String]>] = []
    private var events: [Timed<TrackEvent>] = []
    private var steps: [Timed<CameraMotion.Step>] = []
    private var speech: [Transcript.Segment] = []
    private var previousSubjects: [String]?

    public init(minConfidence: Double = 0.05, quoteLines: Int = 2, minSupport: Double = 0.5) {
        self.minConfidence = minConfidence
        self.quoteLines = quoteLines
        self.minSupport = minSupport
    }

    public mutating func add(labels: Labels, at time: Double) { self.labels.append(Timed(time: time, value: labels)) }

    /// Whole-frame labels alone (no concept, no crops).
    public mutating func add(labels top: [(String, Double)], at time: Double = 0) {
        add(labels: Labels(frameIndex: 0, top: top.enumerated().map { ScoredLabel(name: $0.element.0, index: $0.offset, probability: $0.element.1) }), at: time)
    }

    public mutating func add(text: OnScreenText, at time: Double) { texts.append(Timed(time: time, value: text)) }

    /// Lines without boxes (one per line).
    public mutating func add(text: String, at time: Double = 0) {
        let lines = text.split(separator: "\n").map { OnScreenText.Line(text: String($0), confidence: 1, box: []) }
        add(text: OnScreenText(frameIndex: 0, lines: lines), at: time)
    }

    public mutating func add(tracks: TrackSnapshot, at time: Double) { snapshots.append(Timed(time: time, value: tracks)) }

    /// Detections of a label ("person", "face") when no tracks node follows them.
    public mutating func add(detected label: String, count: Int, at time: Double) { detections.append(Timed(time: time, value: (label, count))) }

    public mutating func add(event: TrackEvent, at time: Double) { events.append(Timed(time: time, value: event)) }

    /// A stretch of speech (a transcript segment, times on the source's clock).
    public mutating func add(speech segment: Transcript.Segment) {
        guard !segment.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return }
        speech.append(segment)
    }

    /// The upper-body colours of the people a frame's `people` record found.
    public mutating func add(upperColours: [String], at time: Double) { clothing.append(Timed(time: time, value: upperColours)) }

    public mutating func add(frame: Frame) {
        if let step = camera.step(frame) { steps.append(Timed(time: frame.seconds, value: step)) }
    }

    public mutating func forgetSource(_ source: String) { camera.forget(source) }

    /// The caption for the segment [start, end) (or [start, end] when `final`), from the evidence
    /// timed inside it; nil when nothing was seen in it.
    public mutating func finish(start: Double, end: Double, final: Bool = true) -> Caption? {
        let inside = { (t: Double) in final ? t <= end : t < end }
        func take<T>(_ list: inout [Timed<T>]) -> [Timed<T>] {
            let here = list.filter { inside($0.time) }
            list.removeAll { inside($0.time) }
            return here
        }
        let labelsHere = take(&labels), textsHere = take(&texts), snapshotsHere = take(&snapshots)
        let detectionsHere = take(&detections), eventsHere = take(&events), stepsHere = take(&steps), clothingHere = take(&clothing)
        // Speech said mostly inside the segment (or most of the segment, for a long sentence);
        // a sentence running on past its end is quoted again in the next.
        let spokenHere = speech.filter { segment in
            let overlap = min(segment.end, end) - max(segment.start, start)
            return overlap > 0 && overlap >= min(0.5 * (segment.end - segment.start), 0.5 * (end - start), 0.5)
                || (segment.end == segment.start && segment.start >= start && inside(segment.start))
        }
        speech.removeAll { final ? $0.start <= end : $0.end <= end }
        guard !labelsHere.isEmpty || !textsHere.isEmpty || !snapshotsHere.isEmpty || !detectionsHere.isEmpty || !spokenHere.isEmpty else { return nil }

        var phrases: [CaptionPhrase] = []
        let people = subjects("person", snapshotsHere, detectionsHere, eventsHere, start: start, end: end)
        let faces = subjects("face", snapshotsHere, detectionsHere, eventsHere, start: start, end: end)
        // The person detector also fires on animals standing upright or drawn like people (an
        // animated film's rabbit). When the crops around the detections read as an animal and
        // no face was found, the caption does not call them people; the objects phrase names
        // the animal and says why (the people records themselves are unchanged).
        let doubt = people == nil || (faces?.count ?? 0) > 0 ? nil : Self.animalTakenForAPerson(labelsHere)
        if let people, doubt == nil {
            var phrase = people.phrase
            // One person, dressed in one colour in most frames they were seen in: say so.
            let single = clothingHere.filter { $0.value.count == 1 }.map { $0.value[0] }
            if people.count == 1, let colour = Dictionary(grouping: single, by: { $0 }).max(by: { $0.value.count < $1.value.count }),
               colour.value.count * 5 >= max(clothingHere.filter { !$0.value.isEmpty }.count, 1) * 3 {
                phrase.text = phrase.text.replacingOccurrences(of: "a person", with: "a person in \(colour.key)", options: .anchored)
                phrase.evidence.append("people: upper body \(colour.key) in \(colour.value.count) of \(clothingHere.count) frames")
            }
            if let faces, faces.count > 0 { phrase.evidence += faces.phrase.evidence }
            phrases.append(phrase)
        } else if let faces {
            phrases.append(faces.phrase)
        }
        if var objects = objectPhrase(labelsHere) ?? tentativePhrase(labelsHere) {
            if let doubt { objects.evidence.append(doubt) }
            phrases.append(objects)
        }
        if phrases.isEmpty {
            phrases.append(CaptionPhrase(kind: .unclear, text: "unclear scene", evidence: unclearEvidence(labelsHere) + (doubt.map { [$0] } ?? [])))
        }

        var tracks = TextTracks()
        for entry in textsHere { tracks.add(entry.value, at: entry.time) }
        let ranked = tracks.ranked()
        let quoted = ranked.prefix(quoteLines).map { Self.shortened($0.best) }
        if !quoted.isEmpty {
            var text = "text reads " + quoted.map { "“\($0)”" }.joined(separator: " and ")
            if ranked.count > quoted.count { text += ", and \(ranked.count - quoted.count) more line\(ranked.count - quoted.count == 1 ? "" : "s")" }
            phrases.append(CaptionPhrase(kind: .text, text: text, evidence: ranked.prefix(quoteLines).map { track in
                "ocr: \(track.readings.count) reading\(track.readings.count == 1 ? "" : "s") in \(track.frames) frame\(track.frames == 1 ? "" : "s"), best “\(track.best)”"
            }))
        }
        if let said = Self.speechPhrase(spokenHere, limit: speechQuote) { phrases.append(said) }
        // The step into the segment's first frame comes from the frame before it, across the cut:
        // it says nothing about this shot's camera (and under shot-aware sampling a still shot
        // has only one other step, which it would outvote).
        let cameraSteps = stepsHere.filter { $0.time > start }
        if let kind = camera.classify(cameraSteps.map(\.value)), let words = Self.cameraWords[kind] {
            let shifts = cameraSteps.map { "(\($0.value.dx),\($0.value.dy))" }.joined(separator: " ")
            phrases.append(CaptionPhrase(kind: .camera, text: words, evidence: ["frame shifts (thumbnail cells): \(shifts)"]))
        }
        let seconds = end - start
        phrases.append(CaptionPhrase(kind: .shot, text: String(format: seconds < 2 ? "a %.1f s shot" : "a %.0f s shot", seconds),
                                     evidence: ["\(labelsHere.count) sampled frame\(labelsHere.count == 1 ? "" : "s")"]))

        // Adjacent segments showing the same subjects say so instead of repeating themselves.
        let subjectsNow = phrases.filter { [.people, .faces, .objects].contains($0.kind) }.map(\.text)
        let repeated = !subjectsNow.isEmpty && subjectsNow == previousSubjects
        previousSubjects = subjectsNow
        var sentence = phrases.filter { $0.kind != .camera && $0.kind != .shot }.map(\.text).joined(separator: "; ")
        let tail = phrases.filter { $0.kind == .camera || $0.kind == .shot }.map(\.text).joined(separator: ", ")
        sentence += "; " + tail
        if repeated { sentence = "Still: " + sentence }
        let text = Self.capitalised(sentence) + "."
        return Caption(text: text, maskedTerms: [], repeated: repeated, labels: averagedLabels(labelsHere), onScreenText: quoted,
                       moreText: max(0, ranked.count - quoted.count), phrases: phrases)
    }

    /// "someone says “…”": the segments in order, quoted briefly; the evidence lists them.
    static func speechPhrase(_ segments: [Transcript.Segment], limit: Int) -> CaptionPhrase? {
        let ordered = segments.sorted { $0.start < $1.start }
        let words = ordered.map { $0.text.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
        guard !words.isEmpty else { return nil }
        var evidence = ordered.prefix(3).map { String(format: "speech %.1f–%.1f s: “%@”", $0.start, $0.end, shortened($0.text, limit: 120)) }
        if ordered.count > 3 { evidence.append("and \(ordered.count - 3) more segment\(ordered.count == 4 ? "" : "s") of speech") }
        return CaptionPhrase(kind: .speech, text: "someone says “\(shortened(words.joined(separator: " "), limit: limit))”", evidence: evidence)
    }

    static let cameraWords: [CameraMotion.Kind: String] = [
        .static: "static camera", .fixed: "fixed camera", .pan: "panning camera", .tilt: "tilting camera", .shake: "shaky camera",
    ]

    /// People (or faces) in the segment: how many at once, where they went, who came and went.
    private func subjects(_ label: String, _ snapshots: [Timed<TrackSnapshot>], _ detections: [Timed<(label: String, count: Int)>],
                          _ events: [Timed<TrackEvent>], start: Double, end: Double) -> (count: Int, phrase: CaptionPhrase)? {
        let mine = snapshots.filter { $0.value.label == label }
        var count = 0
        var evidence: [String] = []
        var movements: [TrackEvent.Movement] = []
        if !mine.isEmpty {
            count = mine.map(\.value.visibleCount).max() ?? 0
            // Each track's path inside the segment, from the frames it was detected in.
            var paths: [Int: [PixelPathPoint]] = [:]
            var size = (width: 1, height: 1)
            for entry in mine {
                size = (entry.value.width, entry.value.height)
                for track in entry.value.tracks where track.misses == 0 {
                    paths[track.id, default: []].append(PixelPathPoint(time: entry.time, x: track.box.centre.x, y: track.box.centre.y, area: track.box.area))
                }
            }
            for (id, path) in paths.sorted(by: { $0.key < $1.key }) {
                let movement = TrackMovement.classify(path, width: size.width, height: size.height)
                movements.append(movement)
                evidence.append(String(format: "\(label) track \(id) %.1f–%.1f s, %@", path.first?.time ?? 0, path.last?.time ?? 0, movement.rawValue))
            }
        } else {
            let counts = detections.filter { $0.value.label == label }
            guard !counts.isEmpty else { return nil }
            count = counts.map(\.value.count).max() ?? 0
            evidence.append("\(label) detections: up to \(count) in a frame of \(counts.count)")
        }
        guard count > 0 else { return nil }
        let enters = events.filter { $0.value.label == label && $0.value.phase == .enter && $0.value.firstSeen > start + 0.25 }.count
        let exits = events.filter { $0.value.label == label && $0.value.phase == .exit && $0.value.lastSeen < end - 0.25 }.count
        var text = label == "person"
            ? (count == 1 ? "a person" : "\(Self.number(count)) people")
            : (count == 1 ? "a face" : "\(Self.number(count)) faces")
        let known = movements.filter { $0 != .unknown }
        if let common = Dictionary(grouping: known, by: { $0 }).max(by: { $0.value.count < $1.value.count }),
           Double(common.value.count) >= 0.5 * Double(max(known.count, 1)), let verb = Self.movementWords[common.key] {
            text += " " + verb
        }
        var comings: [String] = []
        if enters > 0 { comings.append("\(Self.number(enters)) \(enters == 1 ? "enters" : "enter")") }
        if exits > 0 { comings.append("\(Self.number(exits)) \(exits == 1 ? "leaves" : "leave")") }
        if !comings.isEmpty { text += " (" + comings.joined(separator: ", ") + ")" }
        return (count, CaptionPhrase(kind: label == "person" ? .people : .faces, text: text, evidence: evidence))
    }

    static let movementWords: [TrackEvent.Movement: String] = [
        .left: "moving left", .right: "moving right", .up: "moving up", .down: "moving down",
        .approaching: "coming closer", .receding: "moving away", .still: "staying put",
    ]

    /// The concepts that hold over the segment: per frame the best mass of each concept (whole
    /// frame or a crop), kept when seen in enough frames; a concept above one already named is
    /// left out, and at most two are named.
    private func objectPhrase(_ entries: [Timed<Labels>]) -> CaptionPhrase? {
        guard !entries.isEmpty else { return nil }
        typealias Seen = (frames: Int, mass: Double, path: [String], places: Set<String>, wnid: String)
        var seen: [String: Seen] = [:]
        for entry in entries {
            var best: [String: (Double, [String], String, String)] = [:]
            // Without a hedged concept (a labels node with hedge: 0 names none), a class the
            // model is sure of stands for itself.
            let sure = entry.value.top.first.flatMap { top in
                top.probability >= minMass ? Concept(name: top.name, wnid: "", mass: top.probability, path: [top.name], isClass: true) : nil
            }
            let views = [(entry.value.concept ?? sure, "whole frame")] + entry.value.regions.map { ($0.concept, $0.origin.rawValue + " crop") }
            for case let (concept?, place) in views where concept.mass > (best[concept.name]?.0 ?? 0) {
                best[concept.name] = (concept.mass, concept.path, place, concept.wnid)
            }
            for (name, (mass, path, place, wnid)) in best {
                var s = seen[name] ?? (0, 0, path, [], wnid)
                s.frames += 1
                s.mass += mass
                s.places.insert(place)
                seen[name] = s
            }
        }
        let frames = Double(entries.count)
        // Most frames first, then the more specific (longer path), then by name for stable output.
        func before(_ a: (key: String, value: Seen), _ b: (key: String, value: Seen)) -> Bool {
            if a.value.frames != b.value.frames { return a.value.frames > b.value.frames }
            if a.value.path.count != b.value.path.count { return a.value.path.count > b.value.path.count }
            return a.key < b.key
        }
        let candidates = seen.filter { Double($0.value.frames) >= minSupport * frames }.sorted(by: before)
        var chosen: [(String, Seen)] = []
        for (name, s) in candidates where chosen.count < 2 {
            // "wheeled vehicle" adds nothing to "bicycle" (it is above it), and vice versa.
            if chosen.contains(where: { related($0.0, $0.1.wnid, $0.1.path, name, s.wnid, s.path) }) { continue }
            chosen.append((name, s))
        }
        guard !chosen.isEmpty else { return nil }
        let text = chosen.map { Self.withArticle($0.0) }.joined(separator: " and ")
        let evidence = chosen.map { name, s in
            String(format: "labels: %@ in %d of %d frames, mean mass %.2f (%@)", name, s.frames, entries.count, s.mass / Double(s.frames),
                   s.places.sorted().joined(separator: ", "))
        }
        return CaptionPhrase(kind: .objects, text: text, evidence: evidence)
    }

    /// Evidence that a segment's person detections are an animal: in at least two thirds of the
    /// frames with crops around people, every such crop's concept is an animal with mass ≥ 0.6.
    /// (WordNet puts people under "organism", not "animal", so a person's crop — clothing, or
    /// what they ride or hold — rarely reads as one.) nil when the people stand.
    private static func animalTakenForAPerson(_ entries: [Timed<Labels>], minMass: Double = 0.6, share: Double = 2.0 / 3) -> String? {
        let crops = entries.map { $0.value.regions.filter { $0.origin == .person } }.filter { !$0.isEmpty }
        guard !crops.isEmpty else { return nil }
        let animal = crops.filter { regions in
            regions.allSatisfy { region in region.concept.map { $0.mass >= minMass && $0.path.contains("animal") } ?? false }
        }
        guard Double(animal.count) >= share * Double(crops.count) else { return nil }
        return String(format: "not called a person: the person detector fired, but its crops read as an animal (mass ≥ %.1f) in %d of %d frames, and no face was found",
                      minMass, animal.count, crops.count)
    }

    /// One concept is above the other in WordNet (by any path, when the ids are known; else by
    /// the published paths).
    private func related(_ a: String, _ aWnid: String, _ aPath: [String], _ b: String, _ bWnid: String, _ bPath: [String]) -> Bool {
        if aPath.contains(b) || bPath.contains(a) { return true }
        guard !aWnid.isEmpty, !bWnid.isEmpty, let hierarchy = ImageNetHierarchy.shared else { return false }
        return hierarchy.ancestors(ofWnid: aWnid).contains(bWnid) || hierarchy.ancestors(ofWnid: bWnid).contains(aWnid)
    }

    /// No concept clears the bar, but one class leads in most frames with a fair share: named
    /// as a possibility, with its share ("possibly a daisy (34%)"), not as a fact.
    private func tentativePhrase(_ entries: [Timed<Labels>]) -> CaptionPhrase? {
        guard !entries.isEmpty, let best = averagedLabels(entries).first, best.probability >= minTentative else { return nil }
        let leads = entries.filter { $0.value.top.first?.name == best.name }.count
        guard Double(leads) >= minSupport * Double(entries.count) else { return nil }
        return CaptionPhrase(kind: .objects, text: "possibly \(Self.withArticle(best.name)) (\(Int((best.probability * 100).rounded()))%)",
                             evidence: [String(format: "labels: %@ first in %d of %d frames, mean %.2f; no concept above it reached %.2f",
                                               best.name, leads, entries.count, best.probability, minMass)])
    }

    private func unclearEvidence(_ entries: [Timed<Labels>]) -> [String] {
        let top = averagedLabels(entries).first
        return ["no person or face; no concept held over \(Int(minSupport * 100))% of \(entries.count) frames"
            + (top.map { String(format: "; best guess %@ %.0f%%", $0.name, $0.probability * 100) } ?? "")]
    }

    private func averagedLabels(_ entries: [Timed<Labels>]) -> [(name: String, probability: Double)] {
        var sums: [String: Double] = [:]
        for entry in entries { for label in entry.value.top { sums[label.name, default: 0] += label.probability } }
        let n = Double(max(entries.count, 1))
        var averaged: [(name: String, probability: Double)] = []
        for (name, sum) in sums where sum / n >= minConfidence { averaged.append((name, sum / n)) }
        averaged.sort { a, b in a.probability != b.probability ? a.probability > b.probability : a.name < b.name }
        return Array(averaged.prefix(3))
    }

    static func number(_ n: Int) -> String {
        let words = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
        return n < words.count ? words[n] : "\(n)"
    }

    /// WordNet concepts that are mass nouns: "clothing", not "a clothing".
    static let massNouns: Set<String> = ["clothing", "footwear", "furniture", "equipment", "tableware", "crockery", "hardware", "food",
                                          "produce", "seafood", "headdress", "armor", "body armor", "protective garment", "sportswear",
                                          "cookware", "kitchenware", "ware", "glassware", "computer hardware", "sports equipment"]

    static func withArticle(_ phrase: String) -> String {
        if massNouns.contains(phrase.lowercased()) { return phrase }
        guard let first = phrase.lowercased().first else { return phrase }
        return ("aeiou".contains(first) ? "an " : "a ") + phrase
    }

    /// A quoted line stays short; the whole line is in the OCR records.
    static func shortened(_ text: String, limit: Int = 60) -> String {
        text.count <= limit ? text : String(text.prefix(limit - 1)) + "…"
    }

    static func capitalised(_ text: String) -> String {
        guard let first = text.first else { return text }
        return first.uppercased() + text.dropFirst()
    }
}

/// `captions`: one caption per shot (from an upstream `shots` node) or per fixed window,
/// composed from `labels`, `ocr`, people, tracks and `transcripts` records, passed through the
/// moderation policy's word list: flagged words are masked and the caption is marked flagged,
/// never dropped. When a `transcribe` node upstream is still hearing a segment's audio (frames
/// carry how far it has heard), the segment's caption waits for its speech, at most
/// `speech_wait` seconds; frames and records pass on meanwhile.
public final class CaptionsNode: NodeProcessor {
    /// A segment that has ended and waits for its speech.
    private struct Held {
        var start: Double
        var end: Double
        var final: Bool
        var record: Record?
        var deadline: Double
    }

    private var composers: [String: CaptionComposer] = [:]
    private var windowStart: [String: Double] = [:]
    private var lastTime: [String: Double] = [:]
    private var heard: [String: Double] = [:]
    private var held: [String: [Held]] = [:]
    private var saidLate: Set<String> = []
    /// The speech server's model and host, from the source's latest transcript.
    private var speechProvenance: [String: Provenance] = [:]
    private let window: Double
    private let termMask: TermMask
    private let minConfidence: Double
    private let speechWait: Double

    public static let descriptor = NodeDescriptor(
        name: "captions",
        description: "A caption per shot (or per window) from labels, people, on-screen text and speech, with evidence; flagged words masked (kind `captions`).",
        role: .transform, inputs: .records, outputs: .records,
        options: [
            OptionSpec("window", .double, default: .double(0), min: 0, max: 3600, help: "fixed window in seconds; 0: use `shots` records from a shots node"),
            OptionSpec("policy", .inputFile, default: .string(""),
                       help: "moderation policy whose text terms are masked in captions (relative to the pipeline's folder; empty: none)",
                       checkFile: { _ = try ModerationPolicy.load(path: $0) }),
            OptionSpec("min_confidence", .double, default: .double(0.05), min: 0, max: 1, help: "labels averaged below this are left out (up to 3 are named, with their confidence)"),
            OptionSpec("speech_wait", .double, default: .double(30), min: 0, max: 3600,
                       help: "seconds a caption waits for a transcribe node upstream to hear its segment's speech (0: never waits; speech that comes later is in the transcripts only)"),
        ],
        contract: NodeContract(needs: [
            .init(anyOf: [.labels], hint: "add a labels node before it: captions name what the labels node sees"),
            .init(anyOf: [.shots], when: .init("window", is: .double(0)),
                  hint: "add a shots node before it (one caption per shot), or set window: SECONDS for fixed windows"),
        ], produces: [.init(.captions)]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        return .processor(CaptionsNode(window: options.double("window") ?? 0, termMask: try TermMask(policy: options.string("policy")), minConfidence: options.double("min_confidence") ?? 0.05,
                                       speechWait: options.double("speech_wait") ?? 30))
    }

    convenience init(window: Double, maskedTerms: [String], minConfidence: Double, speechWait: Double = 30) {
        self.init(window: window, termMask: TermMask(terms: maskedTerms), minConfidence: minConfidence, speechWait: speechWait)
    }

    init(window: Double, termMask: TermMask, minConfidence: Double, speechWait: Double = 30) {
        self.window = window
        self.termMask = termMask
        self.minConfidence = minConfidence
        self.speechWait = speechWait
    }

    public var flushDeadline: Double? { held.values.compactMap { $0.first?.deadline }.min() }

    public func flush(context: any NodeContext, emit: (Item) -> Void) throws {
        for source in held.keys { release(source, context: context, emit: emit) }
    }

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        switch item {
        case .record(let record):
            emit(item)
            let source = record.sourceID
            if window > 0 && record.kind != .shots {
                let start = windowStart[source] ?? record.start
                windowStart[source] = start
                if record.start >= start + window {
                    conclude(source, start: start, end: record.start, final: false, record: record, context: context, emit: emit)
                    windowStart[source] = record.start
                }
            }
            var composer = composers[source] ?? CaptionComposer(minConfidence: minConfidence)
            switch record.value {
            case .labels(let labels):
                composer.add(labels: labels, at: record.start)
            case .ocr(let text):
                composer.add(text: text, at: record.start)
            case .tracks(let snapshot):
                composer.add(tracks: snapshot, at: record.start)
            case .trackEvent(let event):
                composer.add(event: event, at: event.phase == .enter ? event.firstSeen : event.lastSeen)
            case .people(let people):
                composer.add(detected: "person", count: people.objects.count, at: record.start)
                composer.add(upperColours: people.objects.compactMap { $0.attributes["upper_colour"] }, at: record.start)
            case .faces(let faces):
                composer.add(detected: "face", count: faces.objects.count, at: record.start)
            case .transcript(let transcript):
                // A server that gave no segment times: the chunk's text spans the chunk.
                let segments = transcript.segments.isEmpty ? [Transcript.Segment(start: record.start, end: record.end, text: transcript.text)] : transcript.segments
                segments.forEach { composer.add(speech: $0) }
                if let model = record.provenance.first { speechProvenance[source] = model }
            default:
                break
            }
            composers[source] = composer
            if case .shot(let shot) = record.value, window == 0 {
                // A shot that ended by a cut stops before the cut frame; the last shot includes its end.
                conclude(source, start: record.start, end: record.end, final: shot.includesEnd, record: record, context: context, emit: emit)
            }
            lastTime[source] = max(lastTime[source] ?? record.end, record.end)
            release(source, context: context, emit: emit)
        case .endOfStream(let eos):
            // Everything said in the source is in by its end (the transcribe node sends it first).
            heard[eos.sourceID] = .infinity
            release(eos.sourceID, context: context, emit: emit)
            if window > 0, let start = windowStart[eos.sourceID] {
                let end = lastTime[eos.sourceID] ?? start
                compose(eos.sourceID, Held(start: start, end: end, final: true, record: nil, deadline: 0), emit: emit)
            }
            heard[eos.sourceID] = nil
            windowStart[eos.sourceID] = nil
            lastTime[eos.sourceID] = nil
            speechProvenance[eos.sourceID] = nil
            composers[eos.sourceID] = nil
            held[eos.sourceID] = nil
            saidLate.remove(eos.sourceID)
            emit(item)
        case .frame(let frame):
            emit(item)
            if let mark = frame.metadata[TranscribeNode.heardKey], let through = Double(mark) { heard[frame.sourceID] = through }
            composers[frame.sourceID, default: CaptionComposer(minConfidence: minConfidence)].add(frame: frame)
            release(frame.sourceID, context: context, emit: emit)
        case .status:
            emit(item)
        }
    }

    /// The segment `[start, end]` has ended: its caption goes out now, or waits for its speech
    /// when a transcribe node upstream has not yet heard that far (and behind earlier waiting ones).
    private func conclude(_ source: String, start: Double, end: Double, final: Bool, record: Record?, context: any NodeContext, emit: (Item) -> Void) {
        let segment = Held(start: start, end: end, final: final, record: record, deadline: context.clock.now() + speechWait)
        if speechWait > 0, let through = heard[source], through < end || !(held[source]?.isEmpty ?? true) {
            held[source, default: []].append(segment)
        } else {
            compose(source, segment, emit: emit)
        }
    }

    /// Captions whose speech is in, or that waited long enough, go out in order.
    private func release(_ source: String, context: any NodeContext, emit: (Item) -> Void) {
        guard var queue = held[source], !queue.isEmpty else { return }
        let now = context.clock.now(), through = heard[source] ?? .infinity
        while let first = queue.first, through >= first.end || now >= first.deadline {
            if through < first.end && !saidLate.contains(source) {
                saidLate.insert(source)
                context.post(StatusEvent(.error(NodeFailure(node: "captions", message: String(format: "a caption waited %.0f s for speech the transcribe node had not yet heard and went out without it; later speech is in the transcripts records only", speechWait), fatal: false)),
                                         sourceID: source, wallClock: now))
            }
            compose(source, queue.removeFirst(), emit: emit)
        }
        held[source] = queue
    }

    private func compose(_ source: String, _ segment: Held, emit: (Item) -> Void) {
        guard var composer = composers[source] else { return }
        if let caption = composer.finish(start: segment.start, end: segment.end, final: segment.final) {
            emit(.record(captionRecord(caption, source: source, start: segment.start, end: segment.end, record: segment.record)))
        }
        composers[source] = composer
    }

    func mask(_ text: String) -> (String, [String]) { termMask.apply(text) }

    private func captionRecord(_ composed: Caption, source: String, start: Double, end: Double, record: Record?) -> Record {
        var caption = composed
        (caption.text, caption.maskedTerms) = mask(composed.text)
        caption.onScreenText = composed.onScreenText.map { mask($0).0 }
        // Phrases quote text and speech: the policy's words are masked there too.
        caption.phrases = composed.phrases.map { phrase in
            var phrase = phrase
            phrase.text = mask(phrase.text).0
            phrase.evidence = phrase.evidence.map { mask($0).0 }
            return phrase
        }
        var provenance = [Provenance(name: "captions-compose", version: "1")]
        if !caption.labels.isEmpty { provenance.append(ModelNodeOptions.provenance(ModelZoo.efficientNetLite0)) }
        if !caption.onScreenText.isEmpty { provenance.append(ModelNodeOptions.provenance(ModelZoo.ppOCR)) }
        if caption.phrases.contains(where: { $0.kind == .speech }), let speech = speechProvenance[source] { provenance.append(speech) }
        return Record(.caption(caption), sourceID: source, start: start, end: end, ingestWallClock: record?.ingestWallClock, provenance: provenance)
    }
}
