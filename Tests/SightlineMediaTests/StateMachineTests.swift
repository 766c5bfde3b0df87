import Testing
import SightlineCore
@testable import SightlineMedia

/// Timeline tests for the pure state machines: a sequence of inputs, the exact outputs.
@Suite struct FrameSamplerTests {
    private func picks(_ policy: SamplingPolicy, pts: [Int64], timeBase: Rational) -> [Int64] {
        var sampler = FrameSampler(policy: policy)
        return pts.filter { sampler.shouldKeep(Timestamp(pts: $0, timeBase: timeBase)) }
    }

    @Test func everyNthKeepsFirstAndEachNth() {
        let pts = Array(Int64(0)..<20)
        #expect(picks(.everyNth(7), pts: pts, timeBase: Rational(1, 30)) == [0, 7, 14])
        #expect(picks(.everyNth(1), pts: pts, timeBase: Rational(1, 30)) == pts)
    }

    @Test func perSecondTakesFirstFrameOfEachSlot() {
        // 30 fps in a 1/15360 time base (512 ticks per frame), 2 fps sampling: one frame per 15.
        let pts = (0..<90).map { Int64($0) * 512 }
        let kept = picks(.perSecond(Rational(2, 1)), pts: pts, timeBase: Rational(1, 15360))
        #expect(kept == (0..<6).map { Int64($0) * 15 * 512 })
    }

    @Test func perSecondIsExactForNTSCRates() {
        // 29.97 fps (1001/30000 s per frame) sampled at 29.97/1001*1000: one per 1001/1000 s ...
        // simpler exact case: sample at 30000/1001 / 3 fps -> every 3rd frame exactly.
        let pts = (0..<30).map { Int64($0) * 1001 }
        let kept = picks(.perSecond(Rational(10000, 1001)), pts: pts, timeBase: Rational(1, 30000))
        #expect(kept == stride(from: 0, to: 30, by: 3).map { Int64($0) * 1001 })
    }

    @Test func perSecondMeasuresFromTheFirstFrameNotZero() {
        // A stream starting at 1.4 s (MPEG-TS): slots are counted from 1.4 s.
        let tb = Rational(1, 90000)
        let pts = (0..<50).map { 126_000 + Int64($0) * 3600 }  // 25 fps from 1.4 s
        let kept = picks(.perSecond(Rational(1, 1)), pts: pts, timeBase: tb)
        #expect(kept == [126_000, 126_000 + 25 * 3600])
    }

    @Test func jitterAndBackwardsStampsNeverReopenASlot() {
        let tb = Rational(1, 1000)
        // 10 fps with jitter, one out-of-order stamp; sampling at 2 fps.
        let pts: [Int64] = [0, 98, 203, 299, 401, 502, 480, 601, 699, 1003, 1100, 1499, 1501]
        #expect(picks(.perSecond(Rational(2, 1)), pts: pts, timeBase: tb) == [0, 502, 1003, 1501])
    }

    @Test func resetStartsANewTimeline() {
        var sampler = FrameSampler(policy: .perSecond(Rational(1, 1)))
        let tb = Rational(1, 10)
        let first = sampler.shouldKeep(Timestamp(pts: 50, timeBase: tb))
        let sameSlot = sampler.shouldKeep(Timestamp(pts: 51, timeBase: tb))
        sampler.reset()
        let afterReset = sampler.shouldKeep(Timestamp(pts: 3, timeBase: tb))
        #expect([first, sameSlot, afterReset] == [true, false, true])
    }
}

@Suite struct ReconnectBackoffTests {
    @Test func delaysDoubleUpToTheCapThenGiveUp() {
        var backoff = ReconnectBackoff(policy: .init(maxAttempts: 6, initialDelay: 0.5, multiplier: 2, maxDelay: 4))
        let actions = (0..<7).map { _ in backoff.failed() }
        #expect(actions == [
            .retry(attempt: 1, after: 0.5), .retry(attempt: 2, after: 1), .retry(attempt: 3, after: 2),
            .retry(attempt: 4, after: 4), .retry(attempt: 5, after: 4), .retry(attempt: 6, after: 4),
            .giveUp(attempts: 6),
        ])
    }

    @Test func successResetsTheSchedule() {
        var backoff = ReconnectBackoff(policy: .init(maxAttempts: 3, initialDelay: 1, multiplier: 3, maxDelay: 100))
        let beforeSuccess = [backoff.failed(), backoff.failed()]
        backoff.succeeded()
        let afterSuccess = backoff.failed()
        #expect(beforeSuccess == [.retry(attempt: 1, after: 1), .retry(attempt: 2, after: 3)])
        #expect(afterSuccess == .retry(attempt: 1, after: 1))
    }

    @Test func refusalsRetrySoonButGiveUpOnTheSameSchedule() {
        // A TCP camera restarting: the stream ends at t=0, then attempts are refused until it
        // is back. Refusals retry every 0.5 s; they count as attempts only once each delay of
        // the exponential schedule has run out.
        var backoff = ReconnectBackoff(policy: .init(maxAttempts: 4, initialDelay: 1, multiplier: 2, maxDelay: 8, refusedDelay: 0.5))
        var timeline: [ReconnectBackoff.Action] = []
        var now = 0.0
        timeline.append(backoff.failed(now: now))             // the loss: attempt 1 in 1 s
        while now < 20 {
            now += 0.5
            let action = backoff.failed(refused: true, now: now)
            timeline.append(action)
            if case .giveUp = action { break }
        }
        #expect(timeline.first == .retry(attempt: 1, after: 1))
        #expect(timeline.dropFirst().dropLast().allSatisfy { if case .retry(_, let after) = $0 { after == 0.5 } else { false } })
        // Counted attempts at 1, 3, 7 and 15 s (delays 1, 2, 4, 8): the fifth failure gives up.
        #expect(timeline.last == .giveUp(attempts: 4))
        #expect(now == 15)
        // A host that stops answering (no refusal) backs off as before.
        var silent = ReconnectBackoff(policy: .init(maxAttempts: 3, initialDelay: 1, multiplier: 2, maxDelay: 8))
        #expect([silent.failed(now: 0), silent.failed(now: 1), silent.failed(now: 3)] == [.retry(attempt: 1, after: 1), .retry(attempt: 2, after: 2), .retry(attempt: 3, after: 4)])
    }

    @Test func zeroAttemptsGivesUpAtOnce() {
        var backoff = ReconnectBackoff(policy: .init(maxAttempts: 0))
        let action = backoff.failed()
        #expect(action == .giveUp(attempts: 0))
    }
}

@Suite struct LiveTimelineTests {
    @Test func passesSteadyTimeThrough() {
        var timeline = LiveTimeline()
        let out = [1.0, 1.04, 1.08].map { timeline.map(raw: $0) }
        #expect(out == [1.0, 1.04, 1.08])
    }

    @Test func clockResetContinuesOneStepLater() {
        var timeline = LiveTimeline()
        let out = [10.0, 10.5, 11.0, 0.2, 0.7].map { timeline.map(raw: $0) }
        #expect(out[0...2] == [10.0, 10.5, 11.0])
        #expect(abs(out[3] - 11.5) < 1e-9)
        #expect(abs(out[4] - 12.0) < 1e-9)
    }

    @Test func forwardJumpBeyondLimitIsADiscontinuity() {
        var timeline = LiveTimeline(maxJump: 5)
        _ = timeline.map(raw: 0)
        _ = timeline.map(raw: 0.1)
        let afterWrap = timeline.map(raw: 95_443.0)  // e.g. a 33-bit pts wrap
        #expect(abs(afterWrap - 0.2) < 1e-9)
    }

    @Test func gapAdvancesByWallClockLoss() {
        var timeline = LiveTimeline()
        _ = timeline.map(raw: 5.0)
        _ = timeline.map(raw: 5.04)
        timeline.noteGap(seconds: 3.0)
        // The restarted sender begins again at 1.4 s; output resumes 3 s after the last frame.
        let resumed = [timeline.map(raw: 1.4), timeline.map(raw: 1.44)]
        #expect(abs(resumed[0] - 8.04) < 1e-9)
        #expect(abs(resumed[1] - 8.08) < 1e-9)
    }

    @Test func neverMovesBackwards() {
        var timeline = LiveTimeline()
        var last = -Double.infinity
        for raw in [3.0, 3.1, 3.1, 2.9, 3.0, 100.0, 100.1, 50.0] {
            let out = timeline.map(raw: raw)
            #expect(out >= last)
            last = out
        }
    }
}

@Suite struct ResizePlanTests {
    @Test func stretchFillsExactly() {
        #expect(ResizePlan.make(mode: .stretch, sourceWidth: 1280, sourceHeight: 720, outputWidth: 224, outputHeight: 224)
            == ResizePlan(scaledWidth: 224, scaledHeight: 224, offsetX: 0, offsetY: 0))
    }

    @Test func letterboxFitsInsideCentred() {
        #expect(ResizePlan.make(mode: .letterbox, sourceWidth: 1280, sourceHeight: 720, outputWidth: 224, outputHeight: 224)
            == ResizePlan(scaledWidth: 224, scaledHeight: 126, offsetX: 0, offsetY: 49))
        #expect(ResizePlan.make(mode: .letterbox, sourceWidth: 720, sourceHeight: 1280, outputWidth: 224, outputHeight: 224)
            == ResizePlan(scaledWidth: 126, scaledHeight: 224, offsetX: 49, offsetY: 0))
    }

    @Test func cropCoversAndCentres() {
        #expect(ResizePlan.make(mode: .crop, sourceWidth: 1280, sourceHeight: 720, outputWidth: 224, outputHeight: 224)
            == ResizePlan(scaledWidth: 398, scaledHeight: 224, offsetX: -87, offsetY: 0))
    }

    @Test func oneSideFollowsTheSourceAspect() {
        #expect(OutputFormat(width: 640).size(sourceWidth: 1280, sourceHeight: 720) == (640, 360))
        #expect(OutputFormat(height: 90).size(sourceWidth: 320, sourceHeight: 240) == (120, 90))
    }
}

/// A live source's audio goes where its frames are, and a slow reader's losses are counted.
@Suite struct LiveAudioPlacementTests {
    @Test func audioFollowsTheFramesOffsetAndWaitsAfterALoss() {
        var timeline = LiveTimeline()
        #expect(timeline.place(raw: 3) == nil, "no frame yet: no place on the clock")
        _ = [10.0, 10.5, 11.0, 0.2].map { timeline.map(raw: $0) }   // the clock reset: offset -11.3
        #expect(abs((timeline.place(raw: 0.4) ?? 0) - 11.7) < 1e-9)
        timeline.noteGap(seconds: 4)
        #expect(timeline.place(raw: 0.6) == nil, "after a loss, audio waits for the next frame's offset")
        _ = timeline.map(raw: 50)
        #expect(abs((timeline.place(raw: 50.25) ?? 0) - 15.75) < 1e-9)
    }

    @Test func theTapDecodesOnlyWhenWantedAndCountsWhatItDrops() {
        let tap = AudioTap(sampleRate: 10, maxSeconds: 2)
        tap.push(.init(start: 0, samples: [Float](repeating: 0, count: 10)))
        #expect(tap.take().blocks.isEmpty && !tap.isWanted)
        tap.want()
        for i in 0..<4 { tap.push(.init(start: Double(i), samples: [Float](repeating: 0, count: 10))) }
        let taken = tap.take()
        #expect(taken.blocks.map(\.start) == [2, 3] && taken.droppedSeconds == 2 && !taken.finished)
        tap.found(.none)
        tap.finish()
        tap.push(.init(start: 4, samples: [0]))
        let last = tap.take()
        #expect(last.blocks.isEmpty && last.finished && last.track == AudioTap.Track.none && last.droppedSeconds == 0)
    }
}
