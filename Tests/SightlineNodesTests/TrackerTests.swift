import Testing
import SightlineCore
@testable import SightlineNodes

/// The tracker on synthetic timelines: boxes moving at known speeds, sampled at 2 frames a
/// second, with crossings, occlusions and missed detections.
@Suite struct TrackerTests {
    func person(_ x: Double, _ y: Double = 100, w: Double = 60, h: Double = 160, score: Double = 0.9) -> TrackedDetection {
        TrackedDetection(label: "person", box: PixelBox(x: x, y: y, width: w, height: h), score: score)
    }

    /// Runs a timeline (one array of detections per frame, 0.5 s apart); returns each frame's update.
    func run(_ frames: [[TrackedDetection]], tracker: inout MultiObjectTracker) -> [MultiObjectTracker.Update] {
        frames.enumerated().map { tracker.update($0.element, at: Double($0.offset) * 0.5) }
    }

    @Test func aSteadyWalkerKeepsOneIDAndEntersOnce() {
        var tracker = MultiObjectTracker()
        let updates = run((0..<10).map { [person(100 + Double($0) * 40)] }, tracker: &tracker)
        let ids = Set(updates.flatMap { $0.tracks.map(\.id) })
        #expect(ids.count == 1)
        #expect(updates.flatMap(\.entered).count == 1)
        #expect(updates.flatMap(\.exited).isEmpty)
        let last = try! #require(updates.last?.tracks.first)
        // 40 px per half second: about 80 px/s to the right once the filter has settled.
        #expect(abs(last.velocity.x - 80) < 15, "velocity \(last.velocity)")
        #expect(last.path.count == 10)
        let final = tracker.finish()
        #expect(final.count == 1 && final[0].firstSeen == 0 && final[0].lastSeen == 4.5)
    }

    @Test func aMissedDetectionDoesNotSplitTheTrack() {
        var tracker = MultiObjectTracker()
        var frames = (0..<8).map { [person(100 + Double($0) * 40)] }
        frames[4] = []  // the detector missed the person in one frame
        let updates = run(frames, tracker: &tracker)
        #expect(Set(updates.flatMap { $0.tracks.map(\.id) }).count == 1)
        #expect(updates.flatMap(\.exited).isEmpty)
        // Coasting through the miss: still reported, not visible, predicted near x = 260 + 30.
        let coasting = try! #require(updates[4].tracks.first)
        #expect(coasting.misses == 1)
        #expect(updates[4].visible("person") == 0 && updates[5].visible("person") == 1)
        #expect(abs(coasting.box.centre.x - 290) < 25, "predicted centre \(coasting.box.centre.x)")
    }

    @Test func twoPeopleCrossingKeepTheirIDs() {
        var tracker = MultiObjectTracker()
        // A walks right from x = 0, B walks left from x = 600, 50 px per frame each; they pass at frame 6.
        let frames = (0..<13).map { t -> [TrackedDetection] in
            let a = person(Double(t) * 50, 100), b = person(600 - Double(t) * 50, 110)
            return t % 2 == 0 ? [a, b] : [b, a]  // the detector's order means nothing
        }
        let updates = run(frames, tracker: &tracker)
        let first = updates[2].tracks.sorted { $0.box.x < $1.box.x }
        let last = updates[12].tracks.sorted { $0.box.x < $1.box.x }
        #expect(first.count == 2 && last.count == 2)
        // Whoever was on the left at the start is on the right at the end.
        #expect(first[0].id == last[1].id && first[1].id == last[0].id, "before \(first.map(\.id)) after \(last.map(\.id))")
        #expect(last[1].velocity.x > 0 && last[0].velocity.x < 0)
        #expect(updates.flatMap(\.exited).isEmpty)
    }

    @Test func anOccludedPersonComesBackUnderTheSameID() {
        var tracker = MultiObjectTracker()
        // Walks right 30 px a frame; hidden behind something for frames 5 and 6.
        let frames = (0..<10).map { t -> [TrackedDetection] in (5...6).contains(t) ? [] : [person(100 + Double(t) * 30)] }
        let updates = run(frames, tracker: &tracker)
        #expect(Set(updates.flatMap { $0.tracks.map(\.id) }).count == 1)
        #expect(updates[7].tracks.first?.misses == 0)
    }

    @Test func aLongAbsenceEndsTheTrackAndANewOneStarts() {
        var tracker = MultiObjectTracker()
        var frames = (0..<4).map { _ in [person(100)] }
        frames += [[], [], [], []]  // gone for four frames (more than maxMisses)
        frames += (0..<3).map { _ in [person(500)] }
        let updates = run(frames, tracker: &tracker)
        let exits = updates.flatMap(\.exited)
        #expect(exits.count == 1)
        // Exits when the third miss is counted (frame 6), with its span ending at the last sighting.
        #expect(updates[6].exited.count == 1 && exits[0].lastSeen == 1.5 && exits[0].firstSeen == 0)
        #expect(Set(updates.flatMap { $0.tracks.map(\.id) }).count == 2)
    }

    @Test func aSingleWeakDetectionIsNoTrack() {
        var tracker = MultiObjectTracker()
        let updates = run([[person(100, score: 0.6)], [], [], [], []], tracker: &tracker)
        #expect(updates.allSatisfy { $0.tracks.isEmpty && $0.entered.isEmpty && $0.exited.isEmpty })
        #expect(tracker.finish().isEmpty)
        // A confident one is a track at once.
        var confident = MultiObjectTracker()
        #expect(confident.update([person(100, score: 0.95)], at: 0).entered.count == 1)
    }

    @Test func labelsNeverMatchEachOther() {
        var tracker = MultiObjectTracker()
        let face = TrackedDetection(label: "face", box: PixelBox(x: 100, y: 100, width: 60, height: 160), score: 0.9)
        let updates = run([[person(100)], [face], [person(100)]], tracker: &tracker)
        #expect(updates[1].tracks.contains { $0.label == "face" })
        #expect(Set(updates.flatMap { $0.tracks.map(\.id) }).count == 2)
    }

    @Test func assignmentFindsTheCheapestMatching() {
        // Greedy would take (0,0) for 1 and then pay 10 for (1,1); the optimum is 2 + 2.
        #expect(Assignment.solve([[1, 2], [2, 10]]) == [1, 0])
        #expect(Assignment.solve([[5, 1, 9]]) == [1])
        #expect(Assignment.solve([[5], [1], [9]]) == [nil, 0, nil])
        #expect(Assignment.solve([]) == [])
    }
}

/// The `tracks` node between detector records and the bus.
@Suite struct TracksNodeTests {
    func people(_ time: Double, frame: Int, _ xs: [Double]) -> Record {
        let objects = xs.map { DetectedObject(box: PixelBox(x: $0, y: 100, width: 60, height: 160), score: 0.9) }
        return Record(.people(Detections(frameIndex: frame, width: 640, height: 360, objects: objects)), sourceID: "cam", start: time, end: time)
    }

    @Test func publishesTracksCountsAndEnterExitEvents() throws {
        let node = TracksNode(configuration: MultiObjectTracker.Configuration())
        let context = try TestContext()
        var out: [Record] = []
        // One person walking right for 6 frames (0.5 s apart), a second one standing from frame 2.
        for t in 0..<6 {
            let record = people(Double(t) * 0.5, frame: t, [50 + Double(t) * 60] + (t >= 2 ? [500] : []))
            try node.process(.record(record), context: context) { if case .record(let r) = $0, r.kind != .people { out.append(r) } }
        }
        try node.process(.endOfStream(EndOfStream(sourceID: "cam")), context: context) { if case .record(let r) = $0 { out.append(r) } }
        let snapshots = out.filter { $0.kind == .tracks }
        #expect(snapshots.count == 6)
        #expect(snapshots.map { $0.data["count"]?.intValue } == [1, 1, 2, 2, 2, 2])
        #expect(snapshots.last?.data["label"] == "person")
        let events = out.filter { $0.kind == .trackEvents }
        #expect(events.map { $0.data["event"]?.stringValue } == ["enter", "enter", "exit", "exit"])
        let walker = try #require(events.first { $0.data["event"] == "exit" && $0.data["movement"] == "right" })
        #expect(walker.start == 0 && walker.end == 2.5)
        if case .array(let path)? = walker.data["path"] { #expect(path.count == 6) } else { Issue.record("no path") }
        #expect(events.contains { $0.data["event"] == "exit" && $0.data["movement"] == "still" })
    }
}
