import Foundation
import SightlineCore
import SightlineGraph
import SightlineModels
import Yams

/// One category of a moderation policy: which evidence scores it, and when a flag starts and ends.
public struct ModerationCategory: Sendable, Equatable {
    public enum Rule: Sendable, Equatable {
        /// The open_nsfw score (records of kind `nsfw`).
        case nsfw
        /// Summed probability of these ImageNet labels (records of kind `labels`).
        case labels(Set<String>)
        /// 1 when on-screen text (records of kind `ocr`) contains one of these words, else 0.
        case text([String])
    }

    public var name: String
    public var rule: Rule
    /// A flag starts once the score has stayed ≥ enter for minDuration seconds, and ends when it
    /// drops below exit (exit ≤ enter: hysteresis, so a score hovering at the line does not flap).
    public var enter: Double
    public var exit: Double
    public var minDuration: Double
    /// Agreeing views (frames, or crops of a frame) at or above `enter` before a flag starts:
    /// one frame's guess is not enough for a label group.
    public var corroborate: Int = 1
    /// What must be in the same frame for a sample to count (an nsfw score with nobody in
    /// the picture is a false flag on skin-coloured scenery or a bare cartoon body).
    public var requires: Presence = .none

    public enum Presence: String, Sendable, Equatable {
        case none
        /// A person or a face (people, faces or tracks records).
        case person
        case face
    }
}

/// A moderation policy file (YAML). See Pipelines/moderation-policy.yaml.
public struct ModerationPolicy: Sendable, Equatable {
    public var categories: [ModerationCategory]

    /// The policy a `moderation` node uses when its pipeline names none: the same text as
    /// Pipelines/moderation-policy.yaml (a test keeps them equal), compiled in so that a
    /// pipeline anywhere works without that file.
    public static let builtInText = #"""
# Moderation policy: which evidence raises a flag, and when it starts and ends.
# Each category has a rule (nsfw score, a group of ImageNet labels, or words in on-screen text),
# an enter threshold, an exit threshold (≤ enter: hysteresis, so scores near the line do not
# flap) and a minimum duration the score must hold before the flag starts (seconds).
# Optional:
#   corroborate: N   views (sampled frames, or crops of a frame) that must agree, at or above
#                    enter, before the flag starts (default 1; label groups use 2 here: one
#                    frame's guess, such as "missile" for a space rocket on its pad, is not enough)
#   requires: person | face | none
#                    a sample counts only when the same frame has a person or face in it (from a
#                    people, faces or tracks node upstream; without one the requirement cannot be
#                    checked and is not applied, and the flag says so). `none` relaxes it.
# Trade-offs: corroboration delays a flag by one sample and misses a weapon seen in one frame
# only; requiring a person misses nudity the person detector does not find (a close-up with no
# face or body pose), and spares animated bodies, skin-coloured scenery and product shots.
version: 1
categories:
  nsfw:
    rule: nsfw
    enter: 0.8
    exit: 0.5
    min_duration: 1.0
    requires: person
  weapons:
    rule: labels
    classes: [assault rifle, rifle, revolver, holster, cannon, missile, projectile, tank, bulletproof vest]
    enter: 0.4
    exit: 0.2
    min_duration: 0
    corroborate: 2
  alcohol:
    rule: labels
    classes: [beer bottle, wine bottle, red wine, beer glass, cocktail shaker, whiskey jug]
    enter: 0.4
    exit: 0.2
    min_duration: 0
    corroborate: 2
  profanity:
    rule: text
    terms: [damn, hell, crap, bastard]
    enter: 1
    exit: 1
    min_duration: 0

"""#

    public static var builtIn: ModerationPolicy {
        get throws { try parse(builtInText, file: "built-in moderation policy") }
    }

    /// A policy file, its label groups checked against the ImageNet class names (a misspelt
    /// class could never fire).
    public static func loadChecked(path: String) throws -> ModerationPolicy {
        let policy = try load(path: path)
        let known = Set(ImageNetLabels.names)
        for category in policy.categories {
            if case .labels(let classes) = category.rule, let unknown = classes.sorted().first(where: { !known.contains($0) }) {
                throw SightlineError.invalidOption(name: "moderation policy", value: path,
                                                   hint: "category '\(category.name)': '\(unknown)' is not an ImageNet class name")
            }
        }
        return policy
    }

    public static func load(path: String) throws -> ModerationPolicy {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw SightlineError.cannotOpen(input: path, reason: "cannot read the moderation policy")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws -> ModerationPolicy {
        func fail(_ why: String) -> SightlineError { .invalidOption(name: "moderation policy", value: file, hint: why) }
        guard let root = try? Yams.load(yaml: text) as? [String: Any], let categories = root["categories"] as? [String: Any], !categories.isEmpty else {
            throw fail("expected a mapping with 'categories'")
        }
        var result: [ModerationCategory] = []
        for (name, value) in categories.sorted(by: { $0.key < $1.key }) {
            guard let body = value as? [String: Any], let ruleName = body["rule"] as? String else {
                throw fail("category '\(name)' needs a 'rule' (nsfw, labels or text)")
            }
            let rule: ModerationCategory.Rule
            switch ruleName {
            case "nsfw": rule = .nsfw
            case "labels":
                guard let classes = body["classes"] as? [String], !classes.isEmpty else { throw fail("category '\(name)': rule labels needs 'classes'") }
                rule = .labels(Set(classes))
            case "text":
                guard let terms = body["terms"] as? [String], !terms.isEmpty else { throw fail("category '\(name)': rule text needs 'terms'") }
                rule = .text(terms.map { $0.lowercased() })
            default:
                throw fail("category '\(name)': unknown rule '\(ruleName)' (nsfw, labels or text)")
            }
            func number(_ key: String, _ fallback: Double) throws -> Double {
                guard let v = body[key] else { return fallback }
                if let d = v as? Double { return d }
                if let i = v as? Int { return Double(i) }
                throw fail("category '\(name)': '\(key)' must be a number")
            }
            let enter = try number("enter", 0.5)
            let exit = try number("exit", enter)
            guard (0...1).contains(enter), (0...1).contains(exit), exit <= enter else {
                throw fail("category '\(name)': need 0 ≤ exit ≤ enter ≤ 1")
            }
            let minDuration = try number("min_duration", 0)
            guard minDuration >= 0 else { throw fail("category '\(name)': min_duration cannot be negative") }
            let corroborate = try number("corroborate", 1)
            guard corroborate >= 1, corroborate <= 1000, corroborate == corroborate.rounded() else {
                throw fail("category '\(name)': corroborate must be a whole number from 1 to 1000")
            }
            let presence: ModerationCategory.Presence
            switch body["requires"] {
            case nil: presence = .none
            case let text as String:
                guard let parsed = ModerationCategory.Presence(rawValue: text) else {
                    throw fail("category '\(name)': requires must be person, face or none, not '\(text)'")
                }
                presence = parsed
            default: throw fail("category '\(name)': requires must be person, face or none")
            }
            let known: Set<String> = ["rule", "classes", "terms", "enter", "exit", "min_duration", "corroborate", "requires"]
            if let unknown = body.keys.sorted().first(where: { !known.contains($0) }) {
                throw fail("category '\(name)': unknown key '\(unknown)' (known: \(known.sorted().joined(separator: ", ")))")
            }
            result.append(ModerationCategory(name: name, rule: rule, enter: enter, exit: exit, minDuration: minDuration,
                                             corroborate: Int(corroborate), requires: presence))
        }
        return ModerationPolicy(categories: result)
    }
}

/// Hysteresis with a minimum duration, as a pure state machine: push (time, score) samples,
/// get flag-start and flag-end events back.
public struct FlagState: Sendable, Equatable {
    public enum Event: Sendable, Equatable {
        /// The flag started at `since` (the first qualifying sample), confirmed now.
        case start(since: Double, peak: Double, evidence: [Double])
        case end(since: Double, until: Double, peak: Double, evidence: [Double])
    }

    public let enter: Double, exit: Double, minDuration: Double, corroborate: Int
    private var candidateSince: Double?
    /// Views at or above enter since the candidate run began.
    private var agreeing = 0
    private var flaggedSince: Double?
    private var peak = 0.0
    private var evidence: [Double] = []
    static let maxEvidence = 16

    public init(enter: Double, exit: Double, minDuration: Double, corroborate: Int = 1) {
        self.enter = enter
        self.exit = exit
        self.minDuration = minDuration
        self.corroborate = max(1, corroborate)
    }

    public var isFlagged: Bool { flaggedSince != nil }

    /// One sample: its score (the best view's) and how many of its views reached `enter`
    /// (1 for a single score).
    public mutating func push(time: Double, score: Double, agreeingViews: Int? = nil) -> Event? {
        if let since = flaggedSince {
            if score < exit {
                let event = Event.end(since: since, until: time, peak: peak, evidence: evidence)
                flaggedSince = nil
                candidateSince = nil
                agreeing = 0
                peak = 0
                evidence = []
                return event
            }
            record(time, score)
            return nil
        }
        guard score >= enter else {
            candidateSince = nil
            agreeing = 0
            peak = 0
            evidence = []
            return nil
        }
        if candidateSince == nil { candidateSince = time }
        agreeing += max(1, agreeingViews ?? 1)
        record(time, score)
        if let since = candidateSince, time - since >= minDuration, agreeing >= corroborate {
            flaggedSince = since
            return .start(since: since, peak: peak, evidence: evidence)
        }
        return nil
    }

    /// End of stream while flagged: the flag ends at the last sample.
    public mutating func finish(at time: Double) -> Event? {
        guard let since = flaggedSince else { return nil }
        flaggedSince = nil
        return .end(since: since, until: time, peak: peak, evidence: evidence)
    }

    private mutating func record(_ time: Double, _ score: Double) {
        peak = max(peak, score)
        if score >= enter && evidence.count < Self.maxEvidence { evidence.append(time) }
    }
}

/// `moderation`: turns `nsfw`, `labels` and `ocr` records into `moderation` flag-start /
/// flag-end records per the policy's categories.
public final class ModerationNode: NodeProcessor {
    private let policy: ModerationPolicy
    private var states: [String: [String: FlagState]] = [:]  // source → category → state
    private var lastTime: [String: Double] = [:]
    private var presence: [String: PresenceLog] = [:]

    public static let descriptor = NodeDescriptor(
        name: "moderation",
        description: "Moderation flags from nsfw/labels/ocr records per a YAML policy (hysteresis, minimum duration); publishes `moderation` records.",
        role: .transform, inputs: .records, outputs: .records,
        options: [OptionSpec("policy", .inputFile, default: .string(""),
                             help: "moderation policy file (YAML, relative to the pipeline's folder); empty: the built-in policy (Pipelines/moderation-policy.yaml)",
                             checkFile: { _ = try ModerationPolicy.loadChecked(path: $0) })],
        contract: NodeContract(needs: [
            .init(anyOf: [.nsfw, .labels, .ocr, .transcripts], hint: "add the nodes whose results the policy's rules read (nsfw, labels, ocr, transcribe) before it"),
        ], produces: [.init(.moderation)]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        let path = options.string("policy") ?? ""
        guard !path.isEmpty else {
            let digest = ModelStore.sha256(of: Data(ModerationPolicy.builtInText.utf8))
            return .processor(ModerationNode(policy: try ModerationPolicy.builtIn,
                                             policyProvenance: Provenance(name: "moderation-policy", version: "built-in", sha256: digest)))
        }
        let policy = try ModerationPolicy.loadChecked(path: path)
        let digest = (try? ModelStore.sha256(ofFile: path)) ?? ""
        return .processor(ModerationNode(policy: policy, policyProvenance: Provenance(name: "moderation-policy", version: path, sha256: digest.isEmpty ? nil : digest)))
    }

    /// The policy file (path and sha256) and the model whose evidence each rule reads.
    private let policyProvenance: Provenance

    public init(policy: ModerationPolicy, policyProvenance: Provenance = Provenance(name: "moderation-policy", version: "1")) {
        self.policy = policy
        self.policyProvenance = policyProvenance
    }

    private func provenance(_ category: String) -> [Provenance] {
        guard let rule = policy.categories.first(where: { $0.name == category })?.rule else { return [policyProvenance] }
        let model: ModelManifest = switch rule {
        case .nsfw: ModelZoo.openNSFW
        case .labels: ModelZoo.efficientNetLite0
        case .text: ModelZoo.ppOCR
        }
        return [policyProvenance, ModelNodeOptions.provenance(model)]
    }

    /// The category's score from one record (its best view), and how many of its views reach
    /// the enter threshold; nil when the record is not its evidence.
    static func sample(_ category: ModerationCategory, _ record: Record) -> (score: Double, agreeing: Int)? {
        if case (.labels(let classes), .labels(let labels)) = (category.rule, record.value) {
            // The whole frame and each crop are views of their own.
            let views = [labels.top] + labels.regions.map(\.top)
            let scores = views.map { top in top.reduce(0.0) { sum, label in classes.contains(label.name) ? sum + label.probability : sum } }
            return (scores.max() ?? 0, scores.filter { $0 >= category.enter }.count)
        }
        guard let score = score(category, record) else { return nil }
        return (score, score >= category.enter ? 1 : 0)
    }

    /// The category's score from one record, or nil when the record is not its evidence.
    static func score(_ category: ModerationCategory, _ record: Record) -> Double? {
        switch (category.rule, record.value) {
        case (.nsfw, .nsfw(let nsfw)):
            return nsfw.score
        case (.labels(let classes), .labels(let labels)):
            return labels.top.reduce(0.0) { sum, label in classes.contains(label.name) ? sum + label.probability : sum }
        case (.text(let terms), .ocr(let text)):
            return contains(text.text, terms) ? 1 : 0
        case (.text(let terms), .transcript(let transcript)):
            // A transcribe node with the same policy has masked the terms already and listed them.
            let masked = Set(transcript.maskedTerms.map { $0.lowercased() })
            return terms.contains(where: { masked.contains($0) }) || contains(transcript.text, terms) ? 1 : 0
        default:
            return nil
        }
    }

    /// Whether `text` holds one of `terms` as whole words (lowercased terms, words in order).
    static func contains(_ text: String, _ terms: [String]) -> Bool {
        let words = text.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
        return terms.contains { term in
            let parts = term.split(separator: " ").map(String.init)
            guard !parts.isEmpty, words.count >= parts.count else { return false }
            return (0...(words.count - parts.count)).contains { Array(words[$0..<($0 + parts.count)]) == parts }
        }
    }

    /// Spoken evidence keeps a flag state of its own per category: transcripts come late, when
    /// the speech server answers, so their times run behind the frames' and would break the
    /// hysteresis of a state fed by both.
    static func stateKey(_ category: String, _ record: Record) -> String {
        if case .transcript = record.value { category + spokenSuffix } else { category }
    }
    static let spokenSuffix = "\u{0}spoken"

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        switch item {
        case .record(let record):
            emit(item)
            lastTime[record.sourceID] = max(lastTime[record.sourceID] ?? record.end, record.end)
            presence[record.sourceID, default: PresenceLog()].observe(record)
            for category in policy.categories {
                guard var (score, agreeing) = Self.sample(category, record) else { continue }
                var notes: [String] = []
                if category.requires != .none, let frame = record.value.frameIndex {
                    switch presence[record.sourceID, default: PresenceLog()].present(category.requires, frame: frame) {
                    case false?:
                        (score, agreeing) = (0, 0)  // nobody in the frame: not evidence
                    case nil:
                        notes.append("requires a \(category.requires.rawValue), but no people, faces or tracks node runs before moderation: not applied")
                    case true?:
                        break
                    }
                }
                let key = Self.stateKey(category.name, record)
                var state = states[record.sourceID]?[key]
                    ?? FlagState(enter: category.enter, exit: category.exit, minDuration: category.minDuration, corroborate: category.corroborate)
                if case .transcript = record.value {
                    // A chunk is one sample that lasts its span: the term was said within it.
                    notes.append("spoken")
                    if let event = state.push(time: record.start, score: score) {
                        emit(.record(self.record(event, category: category.name, source: record.sourceID, ingest: record.ingestWallClock, notes: notes)))
                    }
                    if let event = state.push(time: record.end, score: score) {
                        emit(.record(self.record(event, category: category.name, source: record.sourceID, ingest: record.ingestWallClock, notes: notes)))
                    }
                } else if let event = state.push(time: record.start, score: score, agreeingViews: agreeing) {
                    emit(.record(self.record(event, category: category.name, source: record.sourceID, ingest: record.ingestWallClock, notes: notes)))
                }
                states[record.sourceID, default: [:]][key] = state
            }
        case .endOfStream(let eos):
            for category in policy.categories {
                for key in [category.name, category.name + Self.spokenSuffix] {
                    if var state = states[eos.sourceID]?[key], let event = state.finish(at: lastTime[eos.sourceID] ?? 0) {
                        emit(.record(record(event, category: category.name, source: eos.sourceID, ingest: nil)))
                    }
                }
            }
            states[eos.sourceID] = nil
            presence[eos.sourceID] = nil
            lastTime[eos.sourceID] = nil
        case .frame, .status:
            emit(item)
        }
    }

    private func record(_ event: FlagState.Event, category: String, source: String, ingest: Double?, notes: [String] = []) -> Record {
        switch event {
        case .start(let since, let peak, let evidence):
            return Record(.moderation(ModerationEvent(phase: .start, category: category, peak: peak, evidence: evidence, notes: notes)),
                          sourceID: source, start: since, end: evidence.last ?? since, ingestWallClock: ingest, provenance: provenance(category))
        case .end(let since, let until, let peak, let evidence):
            return Record(.moderation(ModerationEvent(phase: .end, category: category, peak: peak, evidence: evidence)),
                          sourceID: source, start: since, end: until, ingestWallClock: ingest, provenance: provenance(category))
        }
    }
}

/// Who is in which frame of a source, from people, faces and tracks records (they come before
/// the frame's other records). Knows whether it has heard from any detector at all.
struct PresenceLog: Sendable {
    private var people = FrameTable<Bool>(capacity: 256)
    private var faces = FrameTable<Bool>(capacity: 256)
    private var heardPeople = false
    private var heardFaces = false

    mutating func observe(_ record: Record) {
        switch record.value {
        case .people(let d): note(&people, d.frameIndex, !d.objects.isEmpty); heardPeople = true
        case .faces(let d): note(&faces, d.frameIndex, !d.objects.isEmpty); heardFaces = true
        case .tracks(let t) where t.label == "person":
            note(&people, t.frameIndex, t.visibleCount > 0); heardPeople = true
        case .tracks(let t) where t.label == "face":
            note(&faces, t.frameIndex, t.visibleCount > 0); heardFaces = true
        default: break
        }
    }

    /// Someone is in the frame once any record says so.
    private func note(_ table: inout FrameTable<Bool>, _ frame: Int, _ value: Bool) {
        table.set(value || (table[frame] ?? false), for: frame)
    }

    /// Whether the frame has what is required; nil when no detector for it has reported.
    func present(_ required: ModerationCategory.Presence, frame: Int) -> Bool? {
        switch required {
        case .none: return true
        case .person:
            guard heardPeople || heardFaces else { return nil }
            return (people[frame] ?? false) || (faces[frame] ?? false)
        case .face:
            guard heardFaces else { return nil }
            return faces[frame] ?? false
        }
    }
}
