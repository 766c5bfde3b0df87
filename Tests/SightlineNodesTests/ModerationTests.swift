import Foundation
import Testing
import SightlineCore
@testable import SightlineGraph
@testable import SightlineNodes
import SightlineTestSupport

/// Hysteresis and minimum duration as timelines: (time, score) in, events out.
@Suite struct FlagStateTimelineTests {
    private func run(_ samples: [(Double, Double)], enter: Double = 0.8, exit: Double = 0.5, minDuration: Double = 0) -> [FlagState.Event] {
        var state = FlagState(enter: enter, exit: exit, minDuration: minDuration)
        var events = samples.compactMap { state.push(time: $0.0, score: $0.1) }
        if let last = state.finish(at: samples.last?.0 ?? 0) { events.append(last) }
        return events
    }

    @Test func entersAboveEnterAndLeavesBelowExit() {
        let events = run([(0, 0.1), (1, 0.85), (2, 0.7), (3, 0.6), (4, 0.4), (5, 0.9)])
        #expect(events == [
            .start(since: 1, peak: 0.85, evidence: [1]),
            .end(since: 1, until: 4, peak: 0.85, evidence: [1]),
            .start(since: 5, peak: 0.9, evidence: [5]),
            .end(since: 5, until: 5, peak: 0.9, evidence: [5]),
        ])
    }

    @Test func hoveringBetweenExitAndEnterDoesNotFlap() {
        let events = run([(0, 0.9), (1, 0.79), (2, 0.81), (3, 0.51), (4, 0.79), (5, 0.2)])
        #expect(events.count == 2)  // one start, one end
        #expect(events.last == .end(since: 0, until: 5, peak: 0.9, evidence: [0, 2]))
    }

    @Test func minimumDurationDelaysTheStartAndFiltersBlips() {
        // A 0.5 s blip never starts a flag; a 1.5 s episode starts once it has lasted 1 s.
        let events = run([(0, 0.9), (0.5, 0.2), (2, 0.9), (2.5, 0.95), (3, 0.9), (3.5, 0.1)], minDuration: 1)
        #expect(events == [
            .start(since: 2, peak: 0.95, evidence: [2, 2.5, 3]),
            .end(since: 2, until: 3.5, peak: 0.95, evidence: [2, 2.5, 3]),
        ])
    }
}

@Suite struct ModerationPolicyTests {
    @Test func defaultPolicyLoads() throws {
        let root = repositoryRoot
        let policy = try ModerationPolicy.load(path: root + "/Pipelines/moderation-policy.yaml")
        #expect(policy.categories.map(\.name) == ["alcohol", "nsfw", "profanity", "weapons"])
        #expect(policy.categories.first { $0.name == "nsfw" }?.minDuration == 1)
    }

    @Test(arguments: [
        "categories: {x: {rule: nope}}", "categories: {x: {rule: labels}}", "categories: {x: {rule: nsfw, enter: 0.5, exit: 0.7}}",
        "categories: {}", "nothing: here", "categories: {x: {rule: text, terms: [a], min_duration: -1}}",
    ])
    func badPoliciesAreRefused(yaml: String) {
        #expect(throws: SightlineError.self) { try ModerationPolicy.parse(yaml, file: "p.yaml") }
    }

    @Test func scoresComeFromTheRightRecords() {
        let labels = TestRecords.labels("s", at: 1, [("rifle", 0.5), ("revolver", 0.25), ("tabby", 0.2)])
        let weapons = ModerationCategory(name: "w", rule: .labels(["rifle", "revolver"]), enter: 0.4, exit: 0.2, minDuration: 0)
        #expect(ModerationNode.score(weapons, labels) == 0.75)
        let ocr = TestRecords.ocr("s", at: 1, "Well, DAMN it!")
        let words = ModerationCategory(name: "p", rule: .text(["damn"]), enter: 1, exit: 1, minDuration: 0)
        #expect(ModerationNode.score(words, ocr) == 1)
        let innocent = TestRecords.ocr("s", at: 1, "Amsterdam")
        #expect(ModerationNode.score(words, innocent) == 0)  // whole words only
        #expect(ModerationNode.score(words, labels) == nil)  // not this category's evidence
    }

    @Test func nodeEmitsFlagStartAndEnd() throws {
        let policy = try ModerationPolicy.parse("categories: {nsfw: {rule: nsfw, enter: 0.8, exit: 0.5}}", file: "p.yaml")
        let node = ModerationNode(policy: policy)
        let context = try TestContext()
        var flags: [Record] = []
        for (t, score) in [(0.0, 0.1), (1.0, 0.9), (2.0, 0.95), (3.0, 0.2)] {
            try node.process(.record(TestRecords.nsfw(at: t, score)), context: context) {
                if case .record(let r) = $0, r.kind == .moderation { flags.append(r) }
            }
        }
        #expect(flags.map { $0.data["event"] } == ["flag_start", "flag_end"])
        #expect(flags.last?.data["peak"] == .double(0.95))
        #expect(flags.last?.start == 1 && flags.last?.end == 3)
    }
}

/// Corroboration and presence requirements, as timelines through the node.
@Suite struct ModerationCorroborationTests {
    private func flags(_ policy: ModerationPolicy, _ records: [Record]) throws -> [Record] {
        let node = ModerationNode(policy: policy)
        let context = try TestContext()
        var out: [Record] = []
        for record in records {
            try node.process(.record(record), context: context) { if case .record(let r) = $0, r.kind == .moderation { out.append(r) } }
        }
        try node.process(.endOfStream(EndOfStream(sourceID: "cam")), context: context) { if case .record(let r) = $0, r.kind == .moderation { out.append(r) } }
        return out
    }

    private func labels(at t: Double, frame: Int, _ whole: [(String, Double)], crops: [[(String, Double)]] = []) -> Record {
        func top(_ pairs: [(String, Double)]) -> [ScoredLabel] { pairs.enumerated().map { ScoredLabel(name: $0.element.0, index: $0.offset, probability: $0.element.1) } }
        let regions = crops.map { RegionLabels(origin: .person, box: PixelBox(x: 0, y: 0, width: 10, height: 10), top: top($0), concept: nil) }
        return Record(.labels(Labels(frameIndex: frame, top: top(whole), regions: regions)), sourceID: "cam", start: t, end: t)
    }

    private func people(at t: Double, frame: Int, count: Int) -> Record {
        let objects = (0..<count).map { _ in DetectedObject(box: PixelBox(x: 0, y: 0, width: 50, height: 100), score: 0.9) }
        return Record(.people(Detections(frameIndex: frame, width: 640, height: 480, objects: objects)), sourceID: "cam", start: t, end: t)
    }

    /// The rocket on its pad: "missile" + "projectile" in one still frame is one view — the
    /// built-in policy's weapons rule needs two that agree.
    @Test func oneFramesGuessDoesNotFlagALabelGroup() throws {
        let policy = try ModerationPolicy.builtIn
        let rocket = labels(at: 0, frame: 0, [("missile", 0.35), ("projectile", 0.28), ("drilling platform", 0.15)])
        #expect(try flags(policy, [rocket]).isEmpty)
        // Two frames in a row, or a frame and a crop of it, agree: flagged.
        let again = labels(at: 1, frame: 1, [("missile", 0.4), ("projectile", 0.2)])
        #expect(try flags(policy, [rocket, again]).map { $0.data["event"] } == ["flag_start", "flag_end"])
        let withCrop = labels(at: 0, frame: 0, [("rifle", 0.5)], crops: [[("assault rifle", 0.6)]])
        #expect(try flags(policy, [withCrop]).first?.data["category"] == "weapons")
        // A frame that falls below enter in between starts the count again.
        let calm = labels(at: 1, frame: 1, [("tabby", 0.9)])
        #expect(try flags(policy, [rocket, calm, labels(at: 2, frame: 2, [("missile", 0.5)])]).isEmpty)
    }

    /// The built-in nsfw rule needs a person in the frame: a bare cartoon body or skin-coloured
    /// scenery with nobody detected does not count.
    @Test func nsfwNeedsAPersonInTheFrame() throws {
        let policy = try ModerationPolicy.builtIn
        let nobody = try flags(policy, (0..<4).flatMap { i in [people(at: Double(i), frame: i, count: 0), TestRecords.nsfw(at: Double(i), frame: i, 0.98)] })
        #expect(nobody.isEmpty)
        let somebody = try flags(policy, (0..<4).flatMap { i in [people(at: Double(i), frame: i, count: 1), TestRecords.nsfw(at: Double(i), frame: i, 0.98)] })
        #expect(somebody.map { $0.data["event"] } == ["flag_start", "flag_end"])
        #expect(somebody.first?.data["notes"] == nil)
        // Without a detector upstream the requirement cannot be checked: not applied, and said.
        let unknown = try flags(policy, (0..<4).map { TestRecords.nsfw(at: Double($0), frame: $0, 0.98) })
        #expect(unknown.first?.data["event"] == "flag_start")
        #expect(unknown.first?.data["notes"]?.arrayValue?.first?.stringValue?.contains("not applied") == true)
        // A policy can relax it.
        let relaxed = try ModerationPolicy.parse("categories: {nsfw: {rule: nsfw, enter: 0.8, exit: 0.5, requires: none}}", file: "p.yaml")
        #expect(try flags(relaxed, (0..<2).flatMap { i in [people(at: Double(i), frame: i, count: 0), TestRecords.nsfw(at: Double(i), frame: i, 0.98)] }).count == 2)
    }

    @Test(arguments: [
        "categories: {x: {rule: nsfw, requires: dog}}", "categories: {x: {rule: nsfw, corroborate: 0}}",
        "categories: {x: {rule: nsfw, corroborate: 1.5}}", "categories: {x: {rule: nsfw, enterr: 0.5}}",
    ])
    func badNewKeysAreRefused(yaml: String) {
        #expect(throws: SightlineError.self) { try ModerationPolicy.parse(yaml, file: "p.yaml") }
    }
}

@Suite struct BuiltInPolicyTests {
    @Test func theBuiltInPolicyIsTheShippedFile() throws {
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Pipelines/moderation-policy.yaml")
        #expect(try String(contentsOf: shipped, encoding: .utf8) == ModerationPolicy.builtInText)
        #expect(try ModerationPolicy.builtIn.categories.map(\.name) == ["alcohol", "nsfw", "profanity", "weapons"])
    }
}

/// Spoken terms: `transcripts` records feed a text category's rule with a flag state of their
/// own, as one sample lasting the chunk; transcripts that arrive late (behind the frames) do
/// not disturb the on-screen text's state.
@Suite struct ModerationSpokenTermsTests {
    func transcript(_ start: Double, _ end: Double, _ text: String, masked: [String] = []) -> Record {
        Record(.transcript(Transcript(text: text, maskedTerms: masked)), sourceID: "cam", start: start, end: end)
    }

    func run(_ records: [Record]) throws -> [Record] {
        let policy = try ModerationPolicy.parse("categories: {profanity: {rule: text, terms: [damn, shut up], enter: 1, exit: 1}}", file: "p.yaml")
        let node = ModerationNode(policy: policy)
        let context = try TestContext()
        var out: [Record] = []
        for record in records {
            try node.process(.record(record), context: context) { if case .record(let r) = $0, r.kind == .moderation { out.append(r) } }
        }
        try node.process(.endOfStream(EndOfStream(sourceID: "cam")), context: context) { if case .record(let r) = $0, r.kind == .moderation { out.append(r) } }
        return out
    }

    @Test func aSpokenTermFlagsItsChunkAndTheNextCleanChunkEndsIt() throws {
        let flags = try run([transcript(0, 4, "hello there"), transcript(4.5, 9, "oh damn it"), transcript(9.5, 12, "all fine")])
        #expect(flags.map { $0.data["event"] } == ["flag_start", "flag_end"])
        #expect(flags.first?.start == 4.5 && flags.last?.end == 9.5)
        if case .moderation(let event)? = flags.first?.value { #expect(event.notes == ["spoken"]) }
    }

    @Test func aMaskedTranscriptStillFlagsAndAPhraseMatchesWholeWords() throws {
        #expect(try run([transcript(0, 3, "oh d*** it", masked: ["damn"])]).count == 2)   // started, ended at the end of stream
        #expect(try run([transcript(0, 3, "please shut up now")]).count == 2)
        #expect(try run([transcript(0, 3, "Amsterdam shutters")]).isEmpty)
    }

    @Test func lateTranscriptsDoNotEndAFlagFromOnScreenText() throws {
        // On-screen text flags from 1 s; a clean transcript about 0–2 s arrives in between.
        let flags = try run([TestRecords.ocr("cam", at: 1, "DAMN"), transcript(0, 2, "nothing here"), TestRecords.ocr("cam", at: 2, "DAMN"),
                             TestRecords.ocr("cam", at: 3, "fine")])
        #expect(flags.map { $0.data["event"] } == ["flag_start", "flag_end"])
        #expect(flags.first?.start == 1 && flags.last?.end == 3)
    }
}
