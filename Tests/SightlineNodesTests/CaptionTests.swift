import Foundation
import Testing
import SightlineCore
import SightlineMedia
@testable import SightlineGraph
@testable import SightlineNodes

@Suite struct CaptionComposerTests {
    private func concept(_ name: String, _ mass: Double, path: [String]) -> Concept {
        Concept(name: name, wnid: "", mass: mass, path: path + [name], isClass: false)
    }

    private func line(_ text: String, x: Double, y: Double, w: Double = 200, h: Double = 40, confidence: Double = 0.9) -> OnScreenText.Line {
        OnScreenText.Line(text: text, confidence: confidence,
                          box: [.init(x: x, y: y), .init(x: x + w, y: y), .init(x: x + w, y: y + h), .init(x: x, y: y + h)])
    }

    private func snapshot(_ frame: Int, _ boxes: [(id: Int, x: Double)], label: String = "person") -> TrackSnapshot {
        TrackSnapshot(frameIndex: frame, label: label, width: 1000, height: 500,
                      tracks: boxes.map { TrackedObject(id: $0.id, box: PixelBox(x: $0.x, y: 100, width: 80, height: 200), score: 0.9,
                                                        velocityX: 0, velocityY: 0, misses: 0, firstSeen: 0) })
    }

    /// A textured 128×72 gray frame; `seed` picks the picture.
    private func frame(_ seed: Int, at time: Double) -> Frame {
        let pixels = (0..<(128 * 72)).map { i in UInt8(truncatingIfNeeded: (i % 128) * (seed * 7 + 3) + (i / 128) * (seed * 13 + 5)) }
        return Frame(sourceID: "cam", decodeIndex: Int(time * 25), timestamp: Timestamp(pts: Int64(time * 25), timeBase: Rational(1, 25)),
                     seconds: time, ingestWallClock: 0, isKeyframe: false, width: 128, height: 72, pixelFormat: .gray8, pixels: pixels)
    }

    /// Under shot-aware sampling a still shot has two frames: its first (the cut) and one a
    /// second later. The step across the cut into the first frame is not this shot's camera,
    /// so the one step inside the shot says "static camera".
    @Test func aStillShotOfTwoFramesIsAStaticCamera() throws {
        var composer = CaptionComposer()
        for (seed, time) in [(1, 0.0), (1, 1.0), (2, 4.0), (2, 5.0)] {
            composer.add(frame: frame(seed, at: time))
            composer.add(labels: [("tabby", 0.6)], at: time)
        }
        _ = composer.finish(start: 0, end: 4, final: false)
        let second = composer.finish(start: 4, end: 8)
        #expect(second?.text.contains("static camera") == true, "\(second?.text ?? "no caption")")
    }

    /// The example the issue gives, from evidence: two people walking left past a car, a sign.
    @Test func peopleObjectsAndTextFromEvidence() throws {
        var composer = CaptionComposer()
        let car = concept("car", 0.7, path: ["entity", "vehicle", "wheeled vehicle", "motor vehicle"])
        for (i, t) in [0.0, 1, 2, 3].enumerated() {
            composer.add(tracks: snapshot(i, [(1, 800 - 150 * t), (2, 700 - 150 * t)]), at: t)
            composer.add(labels: Labels(frameIndex: i, top: [ScoredLabel(name: "cab", index: 468, probability: 0.4)], concept: car), at: t)
            composer.add(text: OnScreenText(frameIndex: i, lines: [line("TAXI", x: 400, y: 200)], width: 1000, height: 500), at: t)
        }
        let finished = composer.finish(start: 0, end: 4)
        let caption = try #require(finished)
        #expect(caption.text == "Two people moving left; a car; text reads “TAXI”; a 4 s shot.")
        #expect(caption.phrases.map(\.kind) == [.people, .objects, .text, .shot])
        // Every phrase keeps its evidence.
        #expect(caption.phrases[0].evidence.count == 2 && caption.phrases[0].evidence[0].contains("person track 1") && caption.phrases[0].evidence[0].contains("left"))
        #expect(caption.phrases[1].evidence == ["labels: car in 4 of 4 frames, mean mass 0.70 (whole frame)"])
        #expect(caption.phrases[2].evidence.first?.contains("4 frames") == true)
        #expect(caption.onScreenText == ["TAXI"] && caption.moreText == 0)
    }

    /// Readings of one line across frames (the same box) become one best reading; a caption
    /// quotes the most salient two and counts the rest, however much text a credits shot has.
    @Test func textIsReadOnceAndQuotedBriefly() throws {
        var composer = CaptionComposer()
        for i in 0..<6 {
            var lines = [line(i % 3 == 2 ? "DIRECTED BY SASHA L0PEZ" : "DIRECTED BY SASHA LOPEZ", x: 300, y: 220, w: 400, h: 60)]
            lines.append(line("small print \(i)", x: 20 + Double(i) * 150, y: 470, w: 120, h: 12))  // small, low, a new line every frame
            lines.append(line("EXIT 12B", x: 420, y: 120, w: 160, h: 30))
            composer.add(text: OnScreenText(frameIndex: i, lines: lines, width: 1000, height: 500), at: Double(i))
        }
        let finished = composer.finish(start: 0, end: 6)
        let caption = try #require(finished)
        #expect(caption.onScreenText == ["DIRECTED BY SASHA LOPEZ", "EXIT 12B"])
        #expect(caption.moreText == 6)
        #expect(caption.text.contains("text reads “DIRECTED BY SASHA LOPEZ” and “EXIT 12B”, and 6 more lines"))
        #expect(caption.text.count < 200)
    }

    @Test func unclearRatherThanAGuess() throws {
        var composer = CaptionComposer()
        composer.add(labels: [("bubble", 0.42), ("spotlight", 0.23)], at: 0)
        composer.add(labels: [("nematode", 0.3), ("spotlight", 0.2)], at: 1)
        let finished = composer.finish(start: 0, end: 2)
        let caption = try #require(finished)
        #expect(caption.text == "Unclear scene; a 2 s shot.")
        #expect(caption.phrases.first?.kind == .unclear && caption.phrases.first?.evidence.first?.contains("best guess spotlight") == true)
    }

    /// A concept named in only one frame of four does not hold over the shot; a more general
    /// one that holds in every frame is named, and not a concept above it as well.
    @Test func conceptsMustHoldOverTheShot() throws {
        var composer = CaptionComposer()
        let bicycle = concept("bicycle", 0.6, path: ["entity", "vehicle", "wheeled vehicle"])
        let wheeled = concept("wheeled vehicle", 0.7, path: ["entity", "vehicle"])
        let vehicle = concept("vehicle", 0.9, path: ["entity"])
        let dog = concept("dog", 0.8, path: ["entity", "animal"])
        let frames: [Labels] = [
            Labels(frameIndex: 0, top: [], concept: bicycle, regions: [RegionLabels(origin: .left, box: PixelBox(x: 0, y: 0, width: 1, height: 1), top: [], concept: vehicle)]),
            Labels(frameIndex: 1, top: [], concept: wheeled),
            Labels(frameIndex: 2, top: [], concept: bicycle, regions: [RegionLabels(origin: .person, box: PixelBox(x: 0, y: 0, width: 1, height: 1), top: [], concept: dog)]),
            Labels(frameIndex: 3, top: [], concept: wheeled),
        ]
        for (i, labels) in frames.enumerated() { composer.add(labels: labels, at: Double(i)) }
        let finished = composer.finish(start: 0, end: 4)
        let caption = try #require(finished)
        // bicycle: 2 of 4 frames (holds at 50 %); wheeled vehicle 2 of 4, less specific, and on
        // bicycle's path; dog 1 of 4; vehicle 1 of 4.
        #expect(caption.phrases.first { $0.kind == .objects }?.text == "a bicycle")
    }

    /// An animated rabbit standing upright set off the person detector; the crops around it
    /// read as an animal and no face was found: the caption names the animal, not a person, and
    /// says why. A person's crop that reads as clothing, or a face in the shot, keeps the person.
    @Test func anAnimalTakenForAPersonIsNotCalledOne() throws {
        let animal = concept("animal", 0.77, path: ["entity", "organism"])
        let jersey = concept("jersey", 0.7, path: ["entity", "artifact", "clothing"])
        func shot(crop: Concept, face: Bool) -> Caption? {
            var composer = CaptionComposer()
            for i in 0..<4 {
                let t = Double(i)
                composer.add(tracks: snapshot(i, [(1, 400)]), at: t)
                if face { composer.add(tracks: snapshot(i, [(2, 420)], label: "face"), at: t) }
                let region = RegionLabels(origin: .person, box: PixelBox(x: 300, y: 50, width: 300, height: 400), top: [], concept: i == 3 ? nil : crop)
                composer.add(labels: Labels(frameIndex: i, top: [], concept: animal, regions: [region]), at: t)
            }
            return composer.finish(start: 0, end: 4)
        }
        let rabbit = try #require(shot(crop: animal, face: false))
        #expect(rabbit.text == "An animal; a 4 s shot.")
        #expect(rabbit.phrases.first?.evidence.last?.hasPrefix("not called a person") == true)
        #expect(rabbit.phrases.first?.evidence.last?.contains("in 3 of 4 frames") == true, "\(rabbit.phrases)")
        let person = try #require(shot(crop: jersey, face: false))
        #expect(person.phrases.first?.kind == .people, "\(person.text)")
        let withAFace = try #require(shot(crop: animal, face: true))
        #expect(withAFace.phrases.first?.kind == .people, "\(withAFace.text)")
    }

    @Test func facesAloneAndComingsAndGoings() throws {
        var composer = CaptionComposer()
        composer.add(detected: "face", count: 1, at: 0)
        composer.add(detected: "face", count: 1, at: 1)
        #expect(composer.finish(start: 0, end: 2)?.text == "A face; a 2 s shot.")
        composer.add(tracks: snapshot(0, [(4, 300)]), at: 3)
        composer.add(event: TrackEvent(phase: .enter, id: 4, label: "person", firstSeen: 3, lastSeen: 3, path: [], bestScore: 0.9, movement: .unknown,
                                       width: 1000, height: 500), at: 3)
        composer.add(tracks: snapshot(1, [(4, 300)]), at: 4)
        #expect(composer.finish(start: 2, end: 5)?.text == "A person staying put (one enters); a 3 s shot.")
    }

    /// "A person in a red jacket": one person whose upper body reads red in most frames.
    @Test func aPersonsClothingColour() {
        var composer = CaptionComposer()
        for (i, colour) in ["red", "red", "orange", "red"].enumerated() {
            composer.add(tracks: snapshot(i, [(7, 400)]), at: Double(i))
            composer.add(upperColours: [colour], at: Double(i))
        }
        let caption = composer.finish(start: 0, end: 4)
        #expect(caption?.text == "A person in red staying put; a 4 s shot.")
        #expect(caption?.phrases.first?.evidence.last == "people: upper body red in 3 of 4 frames")
        // Undecided colours are not named.
        for (i, colour) in ["red", "blue", "green", "red"].enumerated() { composer.add(tracks: snapshot(i + 4, [(7, 400)]), at: Double(4 + i)); composer.add(upperColours: [colour], at: Double(4 + i)) }
        #expect(composer.finish(start: 4, end: 8)?.text == "A person staying put; a 4 s shot.")
    }

    @Test func adjacentSegmentsShowingTheSameThingSaySo() {
        var composer = CaptionComposer()
        composer.add(labels: [("espresso", 0.9)], at: 0)
        let first = composer.finish(start: 0, end: 3)
        composer.add(labels: [("espresso", 0.8)], at: 3)
        let second = composer.finish(start: 3, end: 6)
        composer.add(labels: [("moped", 0.7)], at: 6)
        let third = composer.finish(start: 6, end: 7)
        #expect(first?.repeated == false && second?.repeated == true && third?.repeated == false)
        #expect(second?.text == "Still: an espresso; a 3 s shot.")
        #expect(third?.text == "A moped; a 1.0 s shot.")
    }

    @Test func emptySegmentsHaveNoCaption() {
        var composer = CaptionComposer()
        #expect(composer.finish(start: 0, end: 1) == nil)
    }
}

/// Camera motion from thumbnails: a pan is a steady shift, a shake goes back and forth, a
/// fixed camera only sees local change.
@Suite struct CameraMotionTests {
    /// A textured strip, seen through a window at `offset`.
    private func view(_ offset: Int, change: Bool = false) -> LumaThumbnail {
        var values = [Float](repeating: 0, count: 64 * 36)
        for y in 0..<36 {
            for x in 0..<64 {
                let u = x + offset
                values[y * 64 + x] = Float((u * 37 + y * 11) % 97) + Float((u / 5 + y / 3) % 7) * 20
            }
        }
        if change { for y in 10..<20 { for x in 30..<40 { values[y * 64 + x] = 255 - values[y * 64 + x] } } }
        return LumaThumbnail(width: 64, height: 36, values: values)
    }

    private func steps(_ views: [LumaThumbnail]) -> [CameraMotion.Step] {
        zip(views, views.dropFirst()).map { CameraMotion.align($0, $1, maxShift: 8) }
    }

    @Test func panShakeStaticFixed() {
        let camera = CameraMotion()
        let pan = steps([0, 3, 6, 9, 12].map { view($0) })
        // The picture's content moves 3 cells left each step (the camera turns right).
        #expect(pan.allSatisfy { $0.dx == -3 && $0.dy == 0 }, "\(pan)")
        #expect(camera.classify(pan) == .pan)
        #expect(camera.classify(steps([0, 3, 0, 3, 0].map { view($0) })) == .shake)
        #expect(camera.classify(steps([view(0), view(0), view(0)])) == .static)
        #expect(camera.classify(steps([view(0), view(0, change: true), view(0), view(0, change: true)])) == .fixed)
        #expect(camera.classify([]) == nil)
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
        #expect(caption.data["caption"]?.stringValue == "A scoreboard; text reads “Oh d***, 3 to 1”; a 2 s shot.")
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

/// What was said reaches the caption of the segment it was said in, even when the speech
/// server answers after the segment's frames passed.
@Suite struct SpeechInCaptionsTests {
    private func frame(at t: Double, heard: String?) -> Frame {
        Frame(sourceID: "cam", decodeIndex: Int(t * 10), timestamp: Timestamp(pts: Int64(t * 10), timeBase: Rational(1, 10)),
              seconds: t, ingestWallClock: 0, isKeyframe: true, width: 4, height: 4, pixelFormat: .gray8,
              pixels: [UInt8](repeating: 0, count: 16), metadata: heard.map { [TranscribeNode.heardKey: $0] } ?? [:])
    }

    private func transcript(_ start: Double, _ end: Double, _ segments: [(Double, Double, String)]) -> Record {
        Record(.transcript(Transcript(text: segments.map(\.2).joined(separator: " "), segments: segments.map { Transcript.Segment(start: $0.0, end: $0.1, text: $0.2) })),
               sourceID: "cam", start: start, end: end, provenance: [Provenance(name: "whisper-x", version: "asr@host")])
    }

    @Test func theComposerQuotesWhatWasSaidInTheSegment() throws {
        var composer = CaptionComposer()
        composer.add(labels: [("moped", 0.9)], at: 0.5)
        composer.add(speech: .init(start: 0.2, end: 1.1, text: "Look at that"))
        composer.add(speech: .init(start: 1.6, end: 2.9, text: "it is a moped"))   // mostly in the next segment
        composer.add(speech: .init(start: 3.0, end: 3.5, text: "   "))              // nothing said
        let firstCaption = composer.finish(start: 0, end: 2, final: false)
        let first = try #require(firstCaption)
        #expect(first.phrases.first { $0.kind == .speech }?.text == "someone says “Look at that”")
        #expect(first.text == "A moped; someone says “Look at that”; a 2 s shot.")
        let secondCaption = composer.finish(start: 2, end: 4)
        let second = try #require(secondCaption)
        #expect(second.phrases.first { $0.kind == .speech }?.evidence == ["speech 1.6–2.9 s: “it is a moped”"])
        // A long speech is quoted briefly; the evidence lists the segments.
        composer.add(labels: [("moped", 0.9)], at: 4.5)
        for i in 0..<5 { composer.add(speech: .init(start: 4 + Double(i), end: 4.9 + Double(i), text: "sentence number \(i) is rather long")) }
        let longCaption = composer.finish(start: 4, end: 9)
        let long = try #require(longCaption)
        let said = try #require(long.phrases.first { $0.kind == .speech })
        #expect(said.text.count <= "someone says “”".count + 80 && said.text.hasSuffix("…”"))
        #expect(said.evidence.count == 4 && said.evidence.last == "and 2 more segments of speech")
    }

    @Test func aCaptionWaitsForItsSpeechThenForNoLongerThanTheWait() throws {
        let node = CaptionsNode(window: 0, maskedTerms: ["damn"], minConfidence: 0.15, speechWait: 10)
        let context = try TestContext()
        var captions: [Record] = []
        func feed(_ item: Item) throws {
            try node.process(item, context: context) { if case .record(let c) = $0, c.kind == .captions { captions.append(c) } }
        }
        try feed(.frame(frame(at: 0, heard: "-inf")))
        try feed(.record(TestRecords.labels(at: 0, [("moped", 0.9)])))
        try feed(.record(TestRecords.shot(0, from: 0, to: 2, endedBy: .cut)))
        #expect(captions.isEmpty, "the transcribe node has not heard 0–2 s yet")
        try feed(.frame(frame(at: 2, heard: "1.5")))
        try feed(.record(TestRecords.labels(at: 2, [("tabby", 0.9)])))
        #expect(captions.isEmpty)
        try feed(.record(transcript(0, 3, [(0.4, 1.6, "oh damn a moped")])))
        try feed(.frame(frame(at: 2.5, heard: "3")))
        #expect(captions.count == 1)
        let said = captions.first?.data["phrases"]?.arrayValue?.compactMap { phrase -> [String: JSONValue]? in if case .object(let o) = phrase { o } else { nil } }.first { $0["kind"]?.stringValue == "speech" }
        #expect(said?["text"]?.stringValue == "someone says “oh d*** a moped”")
        #expect(said?["evidence"]?.arrayValue?.first?.stringValue?.contains("damn") == false, "masked in the evidence too")
        #expect(captions.first?.data["flagged"] == .bool(true))
        #expect(captions.first?.provenance.contains { $0.name == "whisper-x" } == true)
        #expect(context.posted.isEmpty)

        // The next shot's speech never comes in time: after the wait it goes out without it, said once.
        let shotEnded = context.clock.now()
        try feed(.record(TestRecords.shot(1, from: 2, to: 4, endedBy: .cut)))
        #expect(captions.count == 1)
        #expect(node.flushDeadline == shotEnded + 10)
        (context.clock as? ManualClock)?.advance(by: 10)
        try node.flush(context: context) { if case .record(let c) = $0, c.kind == .captions { captions.append(c) } }
        #expect(captions.count == 2 && captions.last?.data["caption"]?.stringValue?.contains("tabby") == true)
        #expect(context.posted.count == 1)
        #expect(node.flushDeadline == nil)

        // Without a transcribe node upstream (no mark on frames), nothing waits.
        let plain = CaptionsNode(window: 0, maskedTerms: [], minConfidence: 0.15, speechWait: 10)
        var plainCaptions = 0
        for item: Item in [.frame(frame(at: 0, heard: nil)), .record(TestRecords.labels(at: 0, [("moped", 0.9)])), .record(TestRecords.shot(0, from: 0, to: 2, endedBy: .cut))] {
            try plain.process(item, context: context) { if case .record(let c) = $0, c.kind == .captions { plainCaptions += 1 } }
        }
        #expect(plainCaptions == 1)
    }

    @Test func theEndOfTheSourceReleasesEveryWaitingCaption() throws {
        let node = CaptionsNode(window: 0, maskedTerms: [], minConfidence: 0.15, speechWait: 60)
        let context = try TestContext()
        var captions: [Record] = []
        func feed(_ item: Item) throws {
            try node.process(item, context: context) { if case .record(let c) = $0, c.kind == .captions { captions.append(c) } }
        }
        try feed(.frame(frame(at: 0, heard: "0")))
        try feed(.record(TestRecords.labels(at: 0, [("moped", 0.9)])))
        try feed(.record(TestRecords.shot(0, from: 0, to: 2, endedBy: .cut)))
        try feed(.record(TestRecords.labels(at: 2, [("tabby", 0.9)])))
        try feed(.record(TestRecords.shot(1, from: 2, to: 3, endedBy: .end)))
        #expect(captions.isEmpty)
        try feed(.record(transcript(2, 3, [(2.1, 2.9, "here kitty")])))
        try feed(.endOfStream(EndOfStream(sourceID: "cam")))
        #expect(captions.map(\.start) == [0, 2])
        #expect(captions.last?.data["caption"]?.stringValue == "A tabby; someone says “here kitty”; a 1.0 s shot.")
        #expect(context.posted.isEmpty)
    }
}

/// The VLM's prompt carries what was said, from the built-in caption's speech phrase.
@Suite struct SpeechInThePromptTests {
    @Test func theSpeechPlaceholderIsFilled() {
        let said = CaptionComposer.speechPhrase([.init(start: 1, end: 2.5, text: "turn left here")], limit: 80)
        let caption = Caption(text: "A car.", maskedTerms: [], repeated: false, labels: [], onScreenText: [], phrases: [said].compactMap { $0 })
        let prompt = VLMCaptionsNode.prompt("Speech: {speech}. Text: {text}.", caption: caption, start: 0, end: 3, frameCount: 1)
        #expect(prompt == "Speech: speech 1.0–2.5 s: “turn left here”. Text: none.")
        let silent = Caption(text: "A car.", maskedTerms: [], repeated: false, labels: [], onScreenText: [])
        #expect(VLMCaptionsNode.prompt("Speech: {speech}.", caption: silent, start: 0, end: 3, frameCount: 1) == "Speech: none.")
    }
}

/// The bar of heard audio stops at the earliest chunk still waiting for its answer.
@Suite struct SpeechCoverageTests {
    @Test func outOfOrderAnswersSilenceAndTheEnd() {
        var coverage = SpeechCoverage(start: -.infinity)
        #expect(coverage.heardThrough == -.infinity)
        coverage.decided(through: 1.8)           // 0–1.8 s was silence
        #expect(coverage.heardThrough == 1.8)
        coverage.sent(0, start: 1.8)
        coverage.decided(through: 4)
        coverage.sent(1, start: 4)
        coverage.decided(through: 9)
        #expect(coverage.heardThrough == 1.8)
        coverage.answered(1)                     // the later chunk first: the bar stays
        #expect(coverage.heardThrough == 1.8)
        coverage.answered(0)
        #expect(coverage.heardThrough == 9)
        coverage.decided(through: 7)             // never goes back
        #expect(coverage.heardThrough == 9)
        coverage.sent(2, start: 9)
        coverage.finish()
        #expect(coverage.heardThrough == 9, "the last chunk is still out")
        coverage.answered(2)
        #expect(coverage.heardThrough == .infinity)
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

/// A live source without audio is said once and counts as heard, so captions never wait for it.
@Suite struct LiveSourceWithoutAudioTests {
    @Test func theHeardMarkReachesTheEndAndTheStatusSaysWhy() throws {
        let tap = AudioTap()
        let id = AudioTap.register(tap)
        defer { AudioTap.unregister(id) }
        tap.found(.none)
        // Nothing listens on port 9; no request is ever made without audio.
        let node = try TranscribeNode(options: NodeOptions(["endpoint": .string("http://127.0.0.1:9/v1"), "cache": .string(""), "timeout": .double(1), "retries": .int(0)]))
        let context = try TestContext()
        var marks: [String] = []
        // The node reads on a queue of its own, not Swift's shared pool, so this test may block
        // (before, with the whole suite holding the pool's two threads, the node's task did not
        // run for over a minute and the mark stayed at -inf).
        // Hold every thread of the shared pool for 4 s, as a busy suite did: the mark must
        // still arrive well within that.
        let blockers = (0..<ProcessInfo.processInfo.activeProcessorCount).map { _ in Task.detached { usleep(4_000_000) } }
        Thread.sleep(forTimeInterval: 0.2)  // let them take the threads
        let began = Date(), deadline = began.addingTimeInterval(30)
        var index = 0
        while marks.last != "inf" && Date() < deadline {
            let frame = Frame(sourceID: "cam", decodeIndex: index, timestamp: Timestamp(pts: Int64(index), timeBase: Rational(1, 10)),
                              seconds: Double(index) / 10, ingestWallClock: 0, isKeyframe: true, width: 4, height: 4, pixelFormat: .gray8,
                              pixels: [UInt8](repeating: 0, count: 16), metadata: [VideoSourceNode.audioTapKey: id])
            try node.process(.frame(frame), context: context) { if case .frame(let f) = $0, let m = f.metadata[TranscribeNode.heardKey] { marks.append(m) } }
            index += 1
            Thread.sleep(forTimeInterval: 0.02)
        }
        #expect(marks.last == "inf", "the mark stayed at \(marks.last ?? "nothing")")
        #expect(Date().timeIntervalSince(began) < 3, "the mark waited for the shared pool: \(Date().timeIntervalSince(began)) s")
        #expect(context.posted.count == 1)
        _ = blockers
        try node.process(.endOfStream(EndOfStream(sourceID: "cam")), context: context) { _ in }
    }
}
