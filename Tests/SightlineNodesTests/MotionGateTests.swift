import Testing
import SightlineCore
import SightlineGraph
import SightlineMedia
@testable import SightlineNodes

/// The motion gate as a timeline: (regions decision, media time) in, compute or reuse out.
@Suite struct MotionGateTests {
    private func run(_ gate: inout MotionGate, _ timeline: [(skip: Bool?, at: Double)]) -> String {
        timeline.map {
            switch gate.next(skip: $0.skip, at: $0.at) {
            case .compute: "C"
            case .reuse: "r"
            case .hold: "h"
            }
        }.joined()
    }

    @Test func stillFramesReuseUntilTheResultIsTooOld() {
        var gate = MotionGate(maxAge: 2)
        // 2 frames/s: the first frame computes; still frames reuse for under 2 s; then a refresh.
        let timeline = (0..<10).map { (skip: Optional(true), at: Double($0) * 0.5) }
        #expect(run(&gate, timeline) == "CrrrCrrrCr")
    }

    @Test func aChangeComputesAndRestartsTheClock() {
        var gate = MotionGate(maxAge: 2)
        let timeline: [(skip: Bool?, at: Double)] = [(true, 0), (true, 0.5), (false, 1), (true, 1.5), (true, 2.5), (true, 3)]
        #expect(run(&gate, timeline) == "CrCrrC")
    }

    @Test func noDecisionOrTimeGoingBackComputes() {
        var gate = MotionGate(maxAge: 10)
        let timeline: [(skip: Bool?, at: Double)] = [(true, 5), (true, 5.5), (nil, 6), (true, 6.5), (true, 1), (true, 1.5)]
        #expect(run(&gate, timeline) == "CrCrCr")
    }

    /// `interval`: at most one computed frame per interval, changed or not; unchanged frames
    /// after it still reuse until `maxAge`.
    @Test func anIntervalHoldsResultsWhateverChanged() {
        var gate = MotionGate(maxAge: 3, minInterval: 1)
        let moving = (0..<6).map { (skip: Optional(false), at: Double($0) * 0.5) }
        #expect(run(&gate, moving) == "ChChCh")
        var still = MotionGate(maxAge: 3, minInterval: 1)
        let timeline: [(skip: Bool?, at: Double)] = [(nil, 0), (nil, 0.4), (nil, 1), (true, 1.5), (true, 2.5), (true, 4), (false, 4.2), (nil, 2)]
        // 1.5 s is held (under 1 s since 1 s), 2.5 s reused (unchanged), 4 s past maxAge.
        #expect(run(&still, timeline) == "ChChrChC", "time going back computes")
        // 0 is every frame.
        var every = MotionGate(maxAge: 3)
        #expect(run(&every, moving) == "CCCCCC")
        // A frame that starts a shot computes however soon it comes, and restarts the interval.
        var cuts = MotionGate(maxAge: 3, minInterval: 1)
        let decisions = [(0.0, false), (0.5, false), (0.7, true), (1.2, false), (1.7, false)].map {
            cuts.next(skip: false, at: $0.0, startsShot: $0.1)
        }
        #expect(decisions == [.compute, .hold, .compute, .hold, .compute])
    }

    /// `interval` without `gate`: no regions node needed; the frames in between take the last
    /// results, marked reused, and `wake` is never asked about them (their lines may have moved).
    @Test func anIntervalAloneReusesWithoutARegionsNode() throws {
        let options = NodeOptions(["interval": .double(1)])
        #expect(GatedReuse.wanted(options) && !GatedReuse.wanted(NodeOptions([:])))
        // Delta inference reuses its own way: an interval beside it is refused, not ignored.
        #expect(throws: SightlineError.self) { try GatedReuse.check(NodeOptions(["delta": .bool(true), "interval": .double(1)])) }
        try GatedReuse.check(NodeOptions(["delta": .bool(true)]))
        try GatedReuse.check(options)
        let held = GatedReuse(node: "ocr", options: options)
        held.wake = { _ in
            Issue.record("wake asked about a held frame")
            return true
        }
        var computed: [Int] = []
        var reused: [Int] = []
        for i in 0..<5 {
            let f = Frame(sourceID: "cam", decodeIndex: i, timestamp: Timestamp(pts: Int64(i), timeBase: Rational(1, 2)), seconds: Double(i) / 2,
                          ingestWallClock: 0, isKeyframe: false, width: 1, height: 1, pixelFormat: .gray8, pixels: [0])
            let records = try held.results(for: [f]) { frames in
                computed += frames.map(\.decodeIndex)
                return frames.map { [Record(.nsfw(NSFWScore(frameIndex: $0.decodeIndex, score: 0.5)), frame: $0)] }
            }
            if records[0].first?.delta == .reused { reused.append(i) }
            #expect(records[0].first?.start == f.seconds, "each frame's record carries its own time")
        }
        #expect(computed == [0, 2, 4] && reused == [1, 3])
        // The adaptive sampler's cut: computed at once.
        var cut = Frame(sourceID: "cam", decodeIndex: 5, timestamp: Timestamp(pts: 5, timeBase: Rational(1, 2)), seconds: 2.5,
                        ingestWallClock: 0, isKeyframe: false, width: 1, height: 1, pixelFormat: .gray8, pixels: [0])
        cut.metadata[AdaptiveSampler.frameMetadataKey] = AdaptiveSampler.Reason.cut.rawValue
        _ = try held.results(for: [cut]) { frames in
            computed += frames.map(\.decodeIndex)
            return frames.map { _ in [] }
        }
        #expect(computed == [0, 2, 4, 5])
    }

    /// `wake` (the OCR node: a known line's pixels changed) computes a frame the regions node
    /// marked unchanged, restarts the refresh clock, and its time counts as model time.
    @Test func wakeComputesAFrameTheGateWouldReuse() throws {
        let gated = GatedReuse(node: "ocr", options: NodeOptions(["gate_refresh": .double(10)]))
        func frame(_ i: Int) -> Frame {
            Frame(sourceID: "cam", decodeIndex: i, timestamp: Timestamp(pts: Int64(i), timeBase: Rational(1, 2)),
                  seconds: Double(i) / 2, ingestWallClock: 0, isKeyframe: false, width: 1, height: 1, pixelFormat: .gray8, pixels: [UInt8(i)])
        }
        let mask = TileMask(tileSize: 16, columns: 1, rows: 1, bits: [false])
        var woken: [Int] = []
        gated.wake = { f in
            woken.append(f.decodeIndex)
            return f.decodeIndex == 3
        }
        var computed: [Int] = []
        for i in 0..<6 {
            let f = frame(i)
            gated.observe(Record(.regions(ChangedRegions(frameIndex: i, tiles: mask, changedFraction: 0, skip: i > 0, refresh: i == 0, reason: "")), frame: f))
            _ = try gated.results(for: [f]) { frames in
                computed += frames.map(\.decodeIndex)
                return frames.map { _ in [] }
            }
        }
        #expect(computed == [0, 3], "the first frame, and the one wake asked for")
        #expect(woken == [1, 2, 3, 4, 5], "asked only about frames the gate would reuse")
    }
}
