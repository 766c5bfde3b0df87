import Testing
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
}
