import Foundation
import Testing
import SightlineCore
@testable import SightlineMedia
import SightlineTestSupport

/// Timelines for `mode: sampled` (`SampledDecodePlanner` with the source's `FrameSampler`):
/// packets in decode order, which ones reach the decoder, which frames are kept.
@Suite struct SampledDecodePlannerTests {
    struct Packet { var pts: Int64?; var isKey: Bool }
    struct Outcome {
        var decoded: [Int64] = []
        var kept: [Int64] = []
        var planner = SampledDecodePlanner()
    }

    /// Runs packets through the planner and a sampler as `VideoSource` does: a decoded frame is
    /// sampled at once (no decoder delay), a kept keyframe restarts the slots, and frames listed
    /// in `damaged` come out damaged (dropped before sampling).
    static func run(_ packets: [Packet], fps: Int = 2, timeBase: Rational = Rational(1, 30), damaged: Set<Int64> = []) -> Outcome {
        var sampler = FrameSampler(policy: .perSecond(Rational(Int64(fps), 1)))
        var outcome = Outcome()
        for packet in packets {
            guard outcome.planner.decide(pts: packet.pts, isKey: packet.isKey, timeBase: timeBase, sampler: sampler) == .decode,
                  let pts = packet.pts else { continue }
            outcome.decoded.append(pts)
            if damaged.contains(pts) {
                outcome.planner.frameWasDamaged()
                continue
            }
            let timestamp = Timestamp(pts: pts, timeBase: timeBase)
            if sampler.shouldKeep(timestamp) {
                outcome.kept.append(pts)
                if packet.isKey { sampler.anchor(at: timestamp) }
            }
        }
        return outcome
    }

    /// Frames 0..<count with a keyframe at each of `keys`.
    static func stream(_ count: Int64, keys: Set<Int64>, step: Int64 = 1) -> [Packet] {
        (0..<count).map { Packet(pts: $0 * step, isKey: keys.contains($0)) }
    }

    static func everyGOP(_ gop: Int64, upTo count: Int64) -> Set<Int64> { Set(stride(from: 0, to: count, by: Int(gop))) }

    @Test func aSteadyKeyframeASecondSkipsTheSecondHalfOfEachSecondOnceLearned() {
        let packets = Self.stream(150, keys: Self.everyGOP(30, upTo: 150))
        let outcome = Self.run(packets)
        // The same frames as decoding everything: one every 15.
        #expect(outcome.kept == Array(stride(from: Int64(0), to: 150, by: 15)))
        // Keyframes 0, 30, 60 teach the interval; from then on frames 16–29 of each second go undecoded.
        let skipped = Set(0..<150).subtracting(outcome.decoded.map(Int.init))
        let expected = Set([76..<90, 106..<120, 136..<150].flatMap { Array($0) })
        #expect(skipped == expected)
        #expect(outcome.planner.skippedPackets == 42 && outcome.planner.delayedSamples == 0 && !outcome.planner.disabled)
    }

    @Test func keyframesCloserThanASlotLeaveOnlyKeyframesToDecode() {
        // A keyframe every 10 frames, one frame a second kept.
        let packets = Self.stream(120, keys: Self.everyGOP(10, upTo: 120))
        let outcome = Self.run(packets, fps: 1)
        #expect(outcome.kept == [0, 30, 60, 90])
        #expect(outcome.decoded.filter { $0 >= 20 } == [20, 30, 40, 50, 60, 70, 80, 90, 100, 110])
    }

    @Test func aLateKeyframeDelaysTheFrameDueBeforeItCountsItAndIsLearnedAgain() {
        // Keyframes at 0, 30, 60, 90, then 130 (40 frames: late), then 160, 190, 220, 250.
        let keys: Set<Int64> = [0, 30, 60, 90, 130, 160, 190, 220, 250]
        let outcome = Self.run(Self.stream(270, keys: keys))
        // The frame due at 120 waits for the keyframe at 130.
        #expect(outcome.kept.contains(130) && !outcome.kept.contains(120))
        #expect(outcome.planner.delayedSamples == 1)
        // Learned again from three keyframes (130, 160, 190): everything decoded in between.
        #expect(Array(131..<190).allSatisfy { outcome.decoded.contains($0) })
        #expect(!outcome.decoded.contains(206) && !outcome.decoded.contains(236))
        // Never more than 2 frames a second.
        #expect(zip(outcome.kept, outcome.kept.dropFirst()).allSatisfy { $1 - $0 >= 15 })
    }

    @Test func anEarlyKeyframeEndsTheSkipWithoutLoss() {
        // Keyframes at 0, 30, 60, 90, then 110 (early), 140, 170.
        let keys: Set<Int64> = [0, 30, 60, 90, 110, 140, 170]
        let outcome = Self.run(Self.stream(180, keys: keys))
        #expect(outcome.planner.delayedSamples == 0)
        #expect(outcome.decoded.contains(110))
        // The early keyframe falls in a slot already served; the frame due at 120 is decoded.
        #expect(outcome.kept == [0, 15, 30, 45, 60, 75, 90, 105, 120, 135, 150, 165])
    }

    @Test func reorderedTimestampsDecodeEverything() {
        // B-frames: decode order I P B B P B B … (timestamps go back).
        var packets: [Packet] = []
        for gop in 0..<5 {
            let base = Int64(gop * 30)
            packets.append(Packet(pts: base, isKey: true))
            for i in stride(from: 3, to: 30, by: 3) {
                packets.append(Packet(pts: base + Int64(i), isKey: false))
                packets.append(Packet(pts: base + Int64(i - 2), isKey: false))
                packets.append(Packet(pts: base + Int64(i - 1), isKey: false))
            }
            packets.append(Packet(pts: base + 28, isKey: false))
            packets.append(Packet(pts: base + 29, isKey: false))
        }
        let outcome = Self.run(packets)
        #expect(outcome.planner.skippedPackets == 0)
        #expect(outcome.decoded.count == packets.count)
    }

    @Test func missingTimestampsDecodeEverything() {
        var packets = Self.stream(150, keys: Self.everyGOP(30, upTo: 150))
        for i in stride(from: 5, to: 150, by: 30) { packets[i].pts = nil }
        let outcome = Self.run(packets)
        #expect(outcome.planner.skippedPackets == 0)
    }

    @Test func aDamagedFrameAfterSkippedPacketsStopsSkipping() {
        let packets = Self.stream(240, keys: Self.everyGOP(30, upTo: 240))
        // The keyframe at 90 follows skipped packets; the frame after it comes out damaged.
        let outcome = Self.run(packets, damaged: [91])
        #expect(outcome.planner.disabled)
        #expect(Array(91..<240).allSatisfy { outcome.decoded.contains($0) })
        #expect(outcome.planner.skippedPackets == 14)
    }

    @Test func aNewConnectionForgetsThePredictionButKeepsTheCounts() {
        var outcome = Self.run(Self.stream(150, keys: Self.everyGOP(30, upTo: 150)))
        #expect(outcome.planner.skippedPackets == 42)
        outcome.planner.reset()
        #expect(outcome.planner.predictedKeyframe == nil && outcome.planner.skippedPackets == 42)
    }

    @Test func aDamagedFrameWithoutSkippingChangesNothing() {
        let outcome = Self.run(Self.stream(150, keys: Self.everyGOP(30, upTo: 150)), damaged: [10])
        #expect(!outcome.planner.disabled && outcome.planner.skippedPackets == 42)
    }

    @Test func aDriftingClockStaysOnItsKeyframes() {
        // 29.97 frames/s (1001/30000 s a frame), a keyframe every 30 frames (1.001 s), for ten
        // minutes: the keyframes drift 1 ms a second against a 0.5 s grid from the first frame.
        let frames: Int64 = 18_000
        let packets = Self.stream(frames, keys: Self.everyGOP(30, upTo: frames), step: 1001)
        let outcome = Self.run(packets, timeBase: Rational(1, 30000))
        #expect(outcome.planner.delayedSamples == 0)
        // Every keyframe is kept, with one frame half a second after it.
        let keys = outcome.kept.filter { $0 % 30030 == 0 }
        #expect(keys.count == 600 && outcome.kept.count == 1200)
        let gaps = zip(outcome.kept, outcome.kept.dropFirst()).map { Double($1 - $0) / 30000 }
        #expect(gaps.allSatisfy { $0 >= 0.5 && $0 < 0.5 + 1001.0 / 30000 })
        // Frames 16–29 of every group after the first two go undecoded.
        #expect(outcome.planner.skippedPackets == 14 * 598)
    }

    @Test func aLoopedStreamWhoseSeamShiftsByAFractionOfAFrameKeepsSkipping() {
        // 5 s loops whose seam adds 205 ticks of 1/15360 s (a frame is 512), as ffmpeg's
        // stream_loop of a clip whose audio is a little longer than its video.
        var packets: [Packet] = []
        for loop in 0..<6 {
            let base = Int64(loop) * (150 * 512 + 205)
            packets += (0..<150).map { Packet(pts: base + Int64($0) * 512, isKey: $0 % 30 == 0) }
        }
        let outcome = Self.run(packets, timeBase: Rational(1, 15360))
        #expect(outcome.planner.delayedSamples == 0)
        #expect(outcome.planner.skippedPackets == 14 * 28)
        #expect(outcome.kept.count == 60)
    }
}

/// `mode: sampled` on real streams through FFmpeg.
@Suite struct SampledDecodeModeTests {
    /// One decoder thread: each frame leaves the decoder before the next packet goes in (as
    /// live sources decode), so the sampler's state is current at every decision.
    @Test func aCameraStreamKeepsTheSameFramesWithFewerDecoded() throws {
        let path = try Fixtures.shared.clip(Fixtures.camera)
        let output = OutputFormat(width: 64, height: 48)
        let all = try decodeAll(path, SourceOptions(mode: .all, sampling: .perSecond(Rational(2, 1)), threads: 1, output: output))
        let sampled = try decodeAll(path, SourceOptions(mode: .sampled, sampling: .perSecond(Rational(2, 1)), threads: 1, output: output))
        #expect(all.frames.count == 10)
        #expect(sampled.frames.map(\.timestamp) == all.frames.map(\.timestamp))
        #expect(sampled.frames.map(\.pixels) == all.frames.map(\.pixels))
        #expect(sampled.stats.packetsSkipped == 42)
        #expect(sampled.stats.framesDecoded == 150 - 42)
        #expect(sampled.stats.samplesDelayed == 0 && sampled.stats.corruptFrames == 0)
    }

    /// Garbage in the group of pictures after the first skipped packets (about 62 % into the
    /// file) damages a frame there: the source stops skipping, says where, and counts it.
    @Test func aDamagedFrameAfterSkippingSwitchesSkippingOffAndSaysWhere() throws {
        let path = try Fixtures.shared.corrupted(try Fixtures.shared.clip(Fixtures.camera), at: 0.62, count: 100)
        let run = try decodeAll(path, SourceOptions(mode: .sampled, sampling: .perSecond(Rational(2, 1)), threads: 1, output: nil))
        #expect(run.stats.corruptFrames >= 1)
        // The transport stream starts at 1.4 s; the damage lies in the fourth second.
        let stopped = try #require(run.stats.skippingStoppedAt)
        #expect(stopped >= 1.4 + 3 && stopped < 1.4 + 4)
        // Only the third second's 14 packets were skipped before it.
        #expect(run.stats.packetsSkipped == 14)
        #expect(run.frames.count == 10)
    }

    /// Frame threads hold a frame or two back: the sampler learns of a kept frame a packet or
    /// two late, so those packets are decoded too. The frames are the same.
    @Test func frameThreadsSkipLessButKeepTheSameFrames() throws {
        let path = try Fixtures.shared.clip(Fixtures.camera)
        let all = try decodeAll(path, SourceOptions(mode: .all, sampling: .perSecond(Rational(2, 1)), threads: 2, output: nil))
        let sampled = try decodeAll(path, SourceOptions(mode: .sampled, sampling: .perSecond(Rational(2, 1)), threads: 2, output: nil))
        #expect(sampled.frames.map(\.timestamp) == all.frames.map(\.timestamp))
        #expect(sampled.stats.packetsSkipped >= 30 && sampled.stats.packetsSkipped <= 42)
    }

    @Test func bFramesAreDecodedAsInModeAll() throws {
        let path = try Fixtures.shared.clip(Fixtures.small)
        let all = try decodeAll(path, SourceOptions(mode: .all, sampling: .perSecond(Rational(2, 1)), output: nil))
        let sampled = try decodeAll(path, SourceOptions(mode: .sampled, sampling: .perSecond(Rational(2, 1)), output: nil))
        #expect(sampled.stats.packetsSkipped == 0)
        #expect(sampled.frames.map(\.timestamp) == all.frames.map(\.timestamp))
    }
}
