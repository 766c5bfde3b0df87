import Testing
import SightlineCore
import SightlineGraph
@testable import SightlineNodes

/// The motion gate as a timeline: (regions decision, media time) in, compute or reuse out.
@Suite struct MotionGateTests {
    private func run(_ gate: inout MotionGate, _ timeline: [(skip: Bool?, at: Double)]) -> String {
        timeline.map { gate.next(skip: $0.skip, at: $0.at) == .compute ? "C" : "r" }.joined()
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
