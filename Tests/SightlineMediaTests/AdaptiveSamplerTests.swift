import Foundation
import Testing
import SightlineCore
import SightlineMedia
import SightlineTestSupport

/// Shot-aware sampling: the state machine as timelines, the signature from a luma plane, and a
/// real decode of a clip with known cuts.
@Suite struct AdaptiveSamplerTests {
    /// A flat picture at `level`, with the grid cells in `block` at `level + 60`.
    static func picture(_ level: Float, block: Range<Int> = 0..<0) -> ShotSignature {
        let cells = ShotSignature.gridWidth * ShotSignature.gridHeight
        var grid = [Float](repeating: level, count: cells)
        for i in block where i < cells { grid[i] = level + 60 }
        let changed = block.clamped(to: 0..<cells).count
        var histogram = [Float](repeating: 0, count: 32)
        histogram[Int(level) >> 3] += Float(cells - changed) / Float(cells)
        histogram[min(31, Int(level + 60) >> 3)] += Float(changed) / Float(cells)
        return ShotSignature(histogram: histogram, grid: grid, meanLuma: level)
    }

    /// Feeds 25 fps frames; returns (time, reason) of the kept ones.
    static func run(_ settings: AdaptiveSampling = AdaptiveSampling(), seconds: Double,
                    picture: (Double) -> ShotSignature) -> [(Double, AdaptiveSampler.Reason)] {
        var sampler = AdaptiveSampler(settings: settings)
        var kept: [(Double, AdaptiveSampler.Reason)] = []
        for i in 0..<Int(seconds * 25) {
            let t = Double(i) / 25
            if let reason = sampler.decide(time: t, signature: picture(t)) { kept.append((t, reason)) }
        }
        return kept
    }

    @Test func aStillShotGetsItsSecondFrameWithinASecondThenOnePerGap() {
        let kept = Self.run(seconds: 12) { _ in Self.picture(100) }
        #expect(kept.map(\.1) == [.first, .gap, .gap, .gap])
        #expect(kept.map(\.0) == [0, 1, 6, 11])
    }

    @Test func aCutIsKeptOnItsOwnFrame() {
        // Still at 100 until 3.28 s, then a different picture: the cut frame itself is kept.
        let kept = Self.run(seconds: 6) { t in Self.picture(t < 3.28 ? 100 : 200) }
        #expect(kept.map(\.1) == [.first, .gap, .cut, .gap])
        #expect(kept.map(\.0).enumerated().allSatisfy { abs($1 - [0, 1, 3.28, 4.28][$0]) < 1e-9 })
    }

    @Test func aKeepForChangeJustBeforeACutDoesNotHoldTheCutBack() {
        // Moving from 1 s (keeps for change at 1.0, 1.52, 2.0, 2.52 s: slots every 0.5 s from
        // 1.0, each on the first frame at or after it); a hard cut at 2.6 s, two frames after
        // the last of them.
        let kept = Self.run(seconds: 3) { t in
            guard t < 2.6 - 1e-9 else { return Self.picture(220) }
            let offset = t >= 1 ? Int((t - 1) * 10 + 1e-9) : 0
            return Self.picture(100, block: t >= 1 ? offset..<(offset + 14) : 0..<0)
        }
        #expect(kept.contains { abs($0.0 - 2.52) < 1e-9 && $0.1 == .change })
        #expect(kept.contains { abs($0.0 - 2.6) < 1e-9 && $0.1 == .cut })
    }

    @Test func changeIsSampledAtMostAtTheRateAndOnlyWhileItLasts() {
        // A block of 14 cells (a tenth of the picture) appears at 2 s and slides by one cell
        // every 0.1 s until 4 s, then stays where it stopped.
        let kept = Self.run(seconds: 10) { t in
            guard t >= 2 else { return Self.picture(100) }
            let offset = Int((min(t, 4) - 2) * 10 + 1e-9)
            return Self.picture(100, block: offset..<(offset + 14))
        }
        let changes = kept.filter { $0.1 == .change }.map(\.0)
        #expect(changes.first == 2)                                  // at once: 2 s after the first keep
        // At most one per 0.5 s slot (slots from the keep at 2 s; each keep on the first frame
        // at or after its slot's start, so two keeps are at least 0.5 s less a frame apart).
        let slots = changes.map { Int((($0 - 2) / 0.5 + 1e-9).rounded(.down)) }
        #expect(Set(slots).count == slots.count)
        #expect(zip(changes, changes.dropFirst()).allSatisfy { $1 - $0 >= 0.46 - 1e-9 })
        // The picture after 4 s stays as it was left: no change keeps after it settles.
        #expect(changes.allSatisfy { $0 < 4.5 })
        #expect(kept.last?.1 == .gap)
        // 2 fps fixed sampling would keep 20 frames.
        #expect(kept.count < 10)
    }

    /// A picture that changes all the time, decoded as a nonref decode of 30 fps H.264 gives
    /// it (reference frames every 2 to 4 frames): a keep that is late only because no frame was
    /// decoded at its due time counts from the due time, so the rate stays 2 per second rather
    /// than falling with each late keep.
    @Test func changeKeepsFollowTheirSlotsWhenDecodedFramesAreUneven() {
        var sampler = AdaptiveSampler(settings: AdaptiveSampling())
        var times: [Double] = []
        var frame = 0, step = 0
        let steps = [2, 4, 3, 4, 2, 3]
        while frame < 30 * 20 {
            let t = Double(frame) / 30
            // A block sliding one cell per frame: every decoded frame differs from the last kept.
            let offset = (frame / 2) % 120
            if sampler.decide(time: t, signature: Self.picture(100, block: offset..<(offset + 14))) == .change { times.append(t) }
            frame += steps[step % steps.count]
            step += 1
        }
        // 20 s at 2 per second, less the first slot (the first frame is kept as `first`).
        #expect(times.count >= 38 && times.count <= 39, "\(times.count) keeps for change")
        // Never two in one slot: each keep lies in its own 0.5 s slot from the first at 0.5 s.
        let slots = times.map { Int((($0 - 0.5) / 0.5 + 1e-9).rounded(.down)) }
        #expect(Set(slots).count == slots.count)
        // With a keep only after a full 0.5 s had passed (the old rule), each late keep pushed
        // the next back: 33 here.
        #expect(zip(times, times.dropFirst()).allSatisfy { $1 - $0 > 0.3 })
    }

    @Test func smallLocalChangeBelowTheShareIsIgnored() {
        // 3 of 144 cells change (2 %, under the 5 % default): only gap keeps.
        let kept = Self.run(seconds: 12) { t in Self.picture(100, block: t > 1.5 ? 0..<3 : 0..<0) }
        #expect(kept.map(\.1) == [.first, .gap, .gap, .gap])
        #expect(kept.map(\.0) == [0, 1, 6, 11])
    }

    @Test func cutsKeepTheirSpacingSoAStrobeIsNotAShotPerFrame() {
        let kept = Self.run(seconds: 2) { t in Self.picture(Int(t * 25) % 2 == 0 ? 40 : 200) }
        #expect(zip(kept, kept.dropFirst()).allSatisfy { $1.0 - $0.0 >= AdaptiveSampling.minCutSpacing - 1e-9 })
        #expect(kept.count <= 11)
    }

    @Test func theTailIsKeptOnlyWhenItIsAnIntervalAfterTheLastKeep() {
        var sampler = AdaptiveSampler(settings: AdaptiveSampling())
        _ = sampler.decide(time: 0, signature: Self.picture(100))
        let answers = [0.3, 3.2, 3.4].map { sampler.wantsTail(time: $0) }
        #expect(answers == [false, true, false])   // the tail counts as a keep
    }

    @Test func aClockGoingBackStartsOver() {
        var sampler = AdaptiveSampler(settings: AdaptiveSampling())
        #expect(sampler.decide(time: 10, signature: Self.picture(100)) == .first)
        #expect(sampler.decide(time: 10.04, signature: Self.picture(100)) == nil)
        #expect(sampler.decide(time: 2, signature: Self.picture(100)) == .first)
    }

    @Test func signatureFromALumaPlaneReadsCellsAndHistogram() {
        // 320×180 plane, stride 336: left half 50, right half 200; padding bytes 255 must not count.
        let width = 320, height = 180, stride = 336
        var plane = [UInt8](repeating: 255, count: stride * height)
        for y in 0..<height { for x in 0..<width { plane[y * stride + x] = x < width / 2 ? 50 : 200 } }
        let signature = plane.withUnsafeBufferPointer { p in
            p.baseAddress.flatMap { ShotSignature(luma: $0, stride: stride, width: width, height: height) }
        }
        guard let signature else { Issue.record("no signature"); return }
        #expect(signature.grid.count == 144)
        #expect(signature.grid[0] == 50 && signature.grid[15] == 200 && signature.grid[143] == 200)
        #expect(abs(signature.histogram[50 >> 3] - 0.5) < 1e-6 && abs(signature.histogram[200 >> 3] - 0.5) < 1e-6)
        #expect(signature.histogram[31] == 0)
        #expect(abs(signature.meanLuma - 125) < 1e-4)
        // Too small for the grid: no signature rather than a read out of bounds.
        let tiny = [UInt8](repeating: 0, count: 8 * 8)
        let none = tiny.withUnsafeBufferPointer { p in p.baseAddress.flatMap { ShotSignature(luma: $0, stride: 8, width: 8, height: 8) } }
        #expect(none == nil)
    }

    /// A 12 s clip at 25 fps: 4 s of a still picture, a hard cut at frame 100 to a moving
    /// pattern for 4 s, and a hard cut at frame 200 to another still picture.
    static func montage() throws -> String {
        try Fixtures.shared.make("adaptive-montage.mp4") { path in
            ["-f", "lavfi", "-i", "color=c=0x406080:size=320x180:rate=25:duration=4",
             "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=4",
             "-f", "lavfi", "-i", "color=c=0xe0d0a0:size=320x180:rate=25:duration=4",
             "-filter_complex", "[0][1][2]concat=n=3:v=1:a=0,format=yuv420p",
             "-c:v", "libx264", "-g", "50", "-bf", "2", "-sc_threshold", "0", path]
        }
    }

    @Test func decodingAMontageKeepsEachCutFrameStillShotsSparselyAndTheLastFrame() throws {
        let path = try Self.montage()
        let run = try decodeAll(path, SourceOptions(sampling: .adaptive(AdaptiveSampling()), output: OutputFormat(width: 64, height: 36)))
        let kept = run.frames.map(\.decodeIndex)
        #expect(run.stats.framesDecoded == 300)
        #expect(kept.contains(100) && kept.contains(200))              // both cuts, on their exact frames
        #expect(kept.filter { $0 < 100 } == [0, 25])                     // the first still shot: its start, and 1 s on
        #expect(kept.filter { $0 > 100 && $0 < 200 }.count >= 6)          // the moving part: about 2 fps
        #expect(kept.filter { $0 > 200 } == [225, 299])                  // the last still shot: 1 s on, and its last frame
        #expect(run.stats.framesKeptBy["cut"] == 2 && run.stats.framesKeptBy["tail"] == 1)
        #expect(run.stats.framesSampledOut == 300 - kept.count)
        // Each kept frame says why, for the shots node.
        let reasons = Dictionary(uniqueKeysWithValues: run.frames.map { ($0.decodeIndex, $0.metadata[AdaptiveSampler.frameMetadataKey]) })
        #expect(reasons[0] == "first" && reasons[100] == "cut" && reasons[200] == "cut" && reasons[225] == "gap" && reasons[299] == "tail")
        #expect(run.frames.filter { $0.decodeIndex > 100 && $0.decodeIndex < 200 }.allSatisfy { $0.metadata[AdaptiveSampler.frameMetadataKey] == "change" })
        let converted = run.frames.allSatisfy { $0.pixels.count == 64 * 36 * 3 }
        #expect(converted)
    }
}
