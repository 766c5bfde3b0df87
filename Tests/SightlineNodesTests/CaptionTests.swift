import Foundation
import Testing
import SightlineCore
@testable import SightlineGraph
@testable import SightlineNodes

@Suite struct CaptionComposerTests {
    @Test func labelsAreAveragedOverTheSegmentAndTextQuoted() {
        var composer = CaptionComposer()
        composer.add(labels: [("Egyptian cat", 0.8), ("tabby", 0.1)])
        composer.add(labels: [("Egyptian cat", 0.6), ("tabby", 0.3)])
        composer.add(text: "BREAKING NEWS")
        composer.add(text: "BREAKING NEWS")
        let caption = composer.finish(start: 0, end: 4)
        #expect(caption?.text == "Shows an Egyptian cat (70%; or tabby 20%), on-screen text “BREAKING NEWS”, a 4 s shot.")
        #expect(caption?.labels.map(\.0) == ["Egyptian cat", "tabby"])
        #expect(caption.map { abs($0.labels[0].1 - 0.7) < 1e-9 } == true)
    }

    @Test func adjacentSegmentsShowingTheSameThingDoNotRepeat() {
        var composer = CaptionComposer()
        composer.add(labels: [("espresso", 0.9)])
        let first = composer.finish(start: 0, end: 3)
        composer.add(labels: [("espresso", 0.8)])
        let second = composer.finish(start: 3, end: 6)
        composer.add(labels: [("moped", 0.7)])
        let third = composer.finish(start: 6, end: 7)
        #expect(first?.repeated == false && second?.repeated == true && third?.repeated == false)
        #expect(second?.text.hasPrefix("Still showing an espresso") == true)
        #expect(third?.text == "Shows a moped (70%), a 1.0 s shot.")
    }

    @Test func labelsBelowTheMinimumConfidenceAreLeftOut() {
        var composer = CaptionComposer(minConfidence: 0.05)
        composer.add(labels: [("bubble", 0.42), ("spotlight", 0.23), ("wall clock", 0.06), ("nematode", 0.04)])
        let caption = composer.finish(start: 0, end: 2)
        #expect(caption?.text == "Shows a bubble (42%; or spotlight 23%, wall clock 6%), a 2 s shot.")
    }

    @Test func emptySegmentsHaveNoCaption() {
        var composer = CaptionComposer()
        #expect(composer.finish(start: 0, end: 1) == nil)
    }
}

@Suite struct CaptionsNodeTests {
    @Test func captionPerShotWithFlaggedWordsMasked() throws {
        let node = CaptionsNode(window: 0, maskedTerms: ["damn"], minConfidence: 0.15)
        let context = try TestContext()
        var captions: [Record] = []
        let records: [Record] = [
            TestRecords.labels(at: 0, [("scoreboard", 0.9)]),
            TestRecords.ocr(at: 0, "Oh damn, 3 to 1"),
            TestRecords.labels(at: 2, [("moped", 0.9)]),
            TestRecords.shot(0, from: 0, to: 2, endedBy: .cut),
        ]
        for r in records {
            try node.process(.record(r), context: context) { if case .record(let c) = $0, c.kind == .captions { captions.append(c) } }
        }
        #expect(captions.count == 1)
        let caption = try #require(captions.first)
        #expect(caption.data["caption"]?.stringValue == "Shows a scoreboard (90%), on-screen text “Oh d***, 3 to 1”, a 2 s shot.")
        #expect(caption.data["flagged"] == .bool(true))
        #expect(caption.data["masked_terms"] == ["damn"])
        #expect(caption.start == 0 && caption.end == 2)
        #expect(caption.data["caption"]?.stringValue?.contains("moped") == false, "the cut frame belongs to the next shot")
    }

    @Test func fixedWindowsWithoutShots() throws {
        let node = CaptionsNode(window: 2, maskedTerms: [], minConfidence: 0.15)
        let context = try TestContext()
        var captions: [Record] = []
        for t in 0..<5 {
            let r = TestRecords.labels(at: Double(t), [(t < 2 ? "tabby" : "moped", 0.9)])
            try node.process(.record(r), context: context) { if case .record(let c) = $0, c.kind == .captions { captions.append(c) } }
        }
        try node.process(.endOfStream(EndOfStream(sourceID: "cam")), context: context) { if case .record(let c) = $0, c.kind == .captions { captions.append(c) } }
        #expect(captions.map { [$0.start, $0.end] } == [[0, 2], [2, 4], [4, 4]])
        #expect(captions.first?.data["caption"]?.stringValue?.contains("tabby") == true)
    }
}

@Suite struct SegmentEmbeddingTests {
    private func embedding(_ t: Double, _ v: [Float], space: String = "s") -> Record {
        TestRecords.embedding(at: t, space: space, v)
    }

    @Test func framesPoolPerSegmentAndSpace() throws {
        let node = SegmentEmbeddingsNode(perFrame: false)
        let context = try TestContext()
        var out: [Record] = []
        let inputs: [Record] = [
            embedding(0, [1, 0]), embedding(1, [0, 1]), embedding(1, [1, 0, 0], space: "t"),
            embedding(2, [1, 0]),  // the cut frame: belongs to the next shot
            TestRecords.shot(0, from: 0, to: 2, endedBy: .cut),
            embedding(3, [0, 1]),
            TestRecords.shot(1, from: 2, to: 3, endedBy: .end),
        ]
        for r in inputs { try node.process(.record(r), context: context) { if case .record(let x) = $0 { out.append(x) } } }
        let segments = out.filter { $0.kind == .embeddings }
        #expect(segments.count == 3)  // shot 0: spaces s and t; shot 1: s
        #expect(segments.allSatisfy { $0.data["scope"] == "segment" })
        let first = try #require(segments.first)
        #expect(first.data["frames"] == 2 && first.start == 0 && first.end == 2)
        #expect(abs((first.vector ?? [])[0] - Float(0.5).squareRoot()) < 1e-6 && abs((first.vector ?? [])[1] - Float(0.5).squareRoot()) < 1e-6)
        #expect(segments[1].data["space"] == "t" && segments[1].vector == [1, 0, 0])
        #expect(segments[2].vector.map { abs($0[0] - Float(0.5).squareRoot()) < 1e-6 } == true, "[1,0] at the cut + [0,1]")
        #expect(out.filter { $0.kind == .shots }.count == 2, "shots pass on")
    }
}
