import Testing
@testable import SightlineInference

/// Timelines of `DeltaSchedule`: which mode each frame runs in.
@Suite struct DeltaScheduleTests {
    /// Feeds (changed fraction or nil for a refresh, saving of a masked run) frame by frame and
    /// returns the modes; the cache exists after any dense or masked frame, not after a plain one.
    static func modes(_ frames: [(Double?, Double)], minSaving: Double = 0.15) -> [DeltaSchedule.Mode] {
        var schedule = DeltaSchedule(maxBackoff: 8)
        var hasCache = false
        return frames.map { changed, saving in
            let mode = schedule.next(changed: changed, hasCache: hasCache, denseAbove: 0.3)
            if mode == .masked { schedule.record(maskedSaving: saving, minSaving: minSaving) }
            hasCache = mode != .plain
            return mode
        }
    }

    @Test func aFixedCameraCachesOnceThenRunsMasked() {
        #expect(Self.modes([(nil, 0), (0.05, 0.6), (0.1, 0.5), (0.02, 0.7)]) == [.dense, .masked, .masked, .masked])
    }

    @Test func aMovingCameraStopsCachingFromTheSecondFrameAndACalmFrameRefills() {
        let modes = Self.modes([(nil, 0), (0.9, 0), (0.8, 0), (0.7, 0), (0.05, 0.5), (0.05, 0.5)])
        #expect(modes == [.dense, .plain, .plain, .plain, .dense, .masked])
        // A shot change between calm frames keeps caching.
        #expect(Self.modes([(nil, 0), (0.05, 0.5), (nil, 0), (0.05, 0.5)]) == [.dense, .masked, .dense, .masked])
    }

    /// Masked runs that save too little back off: 2 plain frames, then cache + try, then 4, then
    /// 8 (the cap), 8; a profitable masked run clears the backoff.
    @Test func unprofitableMaskedRunsBackOffExponentially() {
        let poor = (Double?.some(0.2), 0.01)
        let modes = Self.modes([(nil, 0)] + Array(repeating: poor, count: 30))
        let expected: [DeltaSchedule.Mode] = [.dense, .masked, .plain, .plain, .dense, .masked]
            + Array(repeating: .plain, count: 4) + [.dense, .masked]
            + Array(repeating: .plain, count: 8) + [.dense, .masked]
            + Array(repeating: .plain, count: 8) + [.dense]
        #expect(modes == expected)
        let recovered = Self.modes([(nil, 0), (0.2, 0.01), (0.2, 0), (0.2, 0), (0.2, 0), (0.2, 0.5), (0.2, 0.5), (0.2, 0.01), (0.2, 0), (0.2, 0)])
        #expect(recovered == [.dense, .masked, .plain, .plain, .dense, .masked, .masked, .masked, .plain, .plain],
                "after a good run the next poor one backs off by 2 again")
    }

    /// A refresh or a moving frame during a backoff runs plain too (nothing would use the cache).
    @Test func framesDuringABackoffRunPlainWhateverTheyAre() {
        let modes = Self.modes([(nil, 0), (0.2, 0.0), (nil, 0), (0.05, 0), (0.1, 0.5), (0.1, 0.5)])
        #expect(modes == [.dense, .masked, .plain, .plain, .dense, .masked])
    }
}
