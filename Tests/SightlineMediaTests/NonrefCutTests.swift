import Foundation
import Testing
import SightlineCore
import SightlineMedia
import SightlineTestSupport

/// `mode: nonref` under shot-aware sampling: the packet window as a timeline, and real decodes
/// of clips whose cuts fall on skipped B-frames, against a decode of every frame.
@Suite struct NonrefCutTests {
    // MARK: - The packet window

    @Test func theWindowKeepsTheEndingGroupAndTheNewOne() {
        var window = GOPWindow<Int>()
        // Decode order of I0 P3 B1 B2 | I6 P9 B7 B8 | I12 (pts in frames).
        for (pts, key) in [(0, true), (3, false), (1, false), (2, false), (6, true), (9, false), (7, false), (8, false)] {
            window.append(pts, pts: Int64(pts), isKey: key, bytes: 10)
        }
        #expect(window.entries.map(\.element) == [0, 3, 1, 2, 6, 9, 7, 8])
        window.append(12, pts: 12, isKey: true, bytes: 10)
        // The first group goes; the one before the new keyframe stays.
        #expect(window.entries.map(\.element) == [6, 9, 7, 8, 12])
        #expect(window.bytes == 50)
        // A hole after frame 6 replays from keyframe 6; after 12, from 12.
        #expect(window.replay(after: 6)?.map(\.element) == [6, 9, 7, 8, 12])
        #expect(window.replay(after: 9)?.first?.element == 6)
        #expect(window.replay(after: 12)?.map(\.element) == [12])
        // Before the oldest keyframe held: nothing to replay from.
        #expect(window.replay(after: 3) == nil)
        #expect(window.count(between: 6, and: 9) == 2)
        #expect(window.count(between: 9, and: 12) == 0)
        #expect(window.evictedByBounds == 0)
    }

    @Test func theWindowsBoundsDropTheOldestPacketsAndThenTheirKeyframeCannotBeReplayed() {
        var window = GOPWindow<Int>(maxBytes: 100, maxCount: 1000)
        window.append(0, pts: 0, isKey: true, bytes: 40)
        window.append(1, pts: 1, isKey: false, bytes: 40)
        #expect(window.replay(after: 1)?.count == 2)
        window.append(2, pts: 2, isKey: false, bytes: 40)   // 120 bytes: the keyframe goes
        #expect(window.entries.map(\.element) == [1, 2])
        #expect(window.bytes == 80 && window.evictedByBounds == 1)
        #expect(window.replay(after: 1) == nil)
        // The count bound works the same way.
        var counted = GOPWindow<Int>(maxBytes: 1 << 30, maxCount: 3)
        for i in 0..<5 { counted.append(i, pts: Int64(i), isKey: i == 0, bytes: 1) }
        #expect(counted.entries.map(\.element) == [2, 3, 4])
        // A single packet larger than the byte bound is still held (it may be the keyframe).
        var big = GOPWindow<Int>(maxBytes: 10, maxCount: 10)
        big.append(0, pts: 0, isKey: true, bytes: 50)
        #expect(big.entries.count == 1)
    }

    @Test func packetsWithoutTimestampsCountAsNoneOfAHole() {
        var window = GOPWindow<Int>()
        window.append(0, pts: nil, isKey: true, bytes: 1)
        window.append(1, pts: nil, isKey: false, bytes: 1)
        #expect(window.count(between: -100, and: 100) == 0)
        // A keyframe without a timestamp cannot be placed before a hole.
        #expect(window.replay(after: 50) == nil)
    }

    @Test func skippingPaysWhileFramesDecodedAgainStayWithinTheFramesSkipped() {
        #expect(NonrefSkipping.pays(skipped: 0, redecoded: 0))
        #expect(NonrefSkipping.pays(skipped: 100, redecoded: 100))
        #expect(!NonrefSkipping.pays(skipped: 100, redecoded: 101))
    }

    // MARK: - Real decodes

    /// 8 s at 25 fps, 320×180, H.264 with a fixed pattern of `bframes` B-frames between P-frames
    /// (no adaptive B-frames, no B-pyramid: every B-frame is a non-reference frame), no keyframes
    /// at scene changes, and `keyint` frames between keyframes. Hard cuts at frames 61 and 137,
    /// B-frames with 1 or 3 B-frames (both are 1 past a multiple of 4), so a nonref decode skips
    /// both cut frames.
    static func clip(keyint: Int, bframes: Int = 3) throws -> String {
        try Fixtures.shared.make("nonref-cuts-g\(keyint)-b\(bframes).mp4") { path in
            ["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
             "-f", "lavfi", "-i", "color=c=0xd04010:size=320x180:rate=25",
             "-f", "lavfi", "-i", "smptebars=size=320x180:rate=25",
             "-filter_complex", "[0]trim=end_frame=61[a];[1]trim=end_frame=76[b];[2]trim=end_frame=63[c];[a][b][c]concat=n=3:v=1:a=0,format=yuv420p",
             "-c:v", "libx264", "-preset", "veryfast", "-g", "\(keyint)", "-bf", "\(bframes)", "-sc_threshold", "0",
             "-x264-params", "b-adapt=0:b-pyramid=none", path]
        }
    }

    /// Cut frames, counted from the first frame (MPEG-TS starts its clock at 1.4 s).
    static func cutFrames(_ run: DecodeRun) -> [Int] {
        let start = run.frames.first?.timestamp.seconds ?? 0
        return run.frames.filter { $0.metadata[AdaptiveSampler.frameMetadataKey] == "cut" }.map { Int((($0.timestamp.seconds - start) * 25).rounded()) }
    }

    static func options(_ mode: DecodeMode) -> SourceOptions {
        SourceOptions(mode: mode, sampling: .adaptive(AdaptiveSampling()), output: OutputFormat(width: 64, height: 36))
    }

    @Test func cutsOnSkippedFramesLandOnTheirExactFrame() throws {
        let path = try Self.clip(keyint: 50)
        let every = try decodeAll(path, Self.options(.all))
        let skipping = try decodeAll(path, Self.options(.nonref))
        #expect(every.stats.framesDecoded == 200)
        #expect(Self.cutFrames(every) == [61, 137])
        // The cuts are B-frames the nonref decoder skipped: only decoding the holes again
        // finds them on their own frame rather than on the next P-frame (64, 140).
        #expect(Self.cutFrames(skipping) == [61, 137])
        #expect(skipping.stats.holesRedecoded >= 2)
        #expect(skipping.stats.holesNotRedecoded == 0)
        #expect(skipping.stats.skippingStoppedAt == nil)
        // It still decoded far fewer frames: the skipped ones, less those decoded again.
        #expect(skipping.stats.framesSkipped >= 100)
        #expect(skipping.stats.framesDecoded + skipping.stats.framesRedecoded < 170)
        // Each frame kept in both decodes for the same reason is the same picture (exact
        // frames, decoded from the same references).
        let keptEvery = Dictionary(uniqueKeysWithValues: every.frames.map { ($0.timestamp.pts, $0) })
        for frame in skipping.frames where frame.metadata[AdaptiveSampler.frameMetadataKey] == "cut" {
            let same = keptEvery[frame.timestamp.pts]?.pixels == frame.pixels
            #expect(same, "cut frame at pts \(frame.timestamp.pts) differs from the full decode's")
        }
        // Frames come out in presentation order, and each keeps its place in the file as its
        // index, skipped frames counted.
        let times = skipping.frames.map(\.timestamp.pts)
        #expect(times == times.sorted())
        let placed = skipping.frames.allSatisfy { $0.decodeIndex == Int(($0.timestamp.seconds * 25).rounded()) }
        #expect(placed, "indices \(skipping.frames.map(\.decodeIndex)) against times \(skipping.frames.map(\.timestamp.seconds))")
    }

    @Test func aLongGroupOfPicturesGoesBackToDecodingEveryFrameAndKeepsTheCutsExact() throws {
        // One keyframe for the whole clip and one B-frame per P-frame: the first hole costs the
        // 31 reference frames since frame 0 again, more than the 30 frames skipped so far, so
        // the source decodes every frame after it.
        let path = try Self.clip(keyint: 250, bframes: 1)
        let skipping = try decodeAll(path, Self.options(.nonref))
        #expect(Self.cutFrames(skipping) == [61, 137])
        #expect(skipping.stats.skippingStoppedAt != nil)
        #expect(skipping.stats.holesRedecoded >= 1)
        #expect(skipping.stats.framesDecoded + skipping.stats.framesRedecoded < 200 + 80)
    }

    @Test func cutsOnKeyframesNeedNoHoleDecodedAgain() throws {
        // The adaptive montage: keyframes every 50 frames, cuts at 100 and 200 (keyframes).
        let path = try AdaptiveSamplerTests.montage()
        let skipping = try decodeAll(path, Self.options(.nonref))
        let cuts = skipping.frames.filter { $0.metadata[AdaptiveSampler.frameMetadataKey] == "cut" }.map { Int(($0.timestamp.seconds * 25).rounded()) }
        #expect(cuts == [100, 200])
        #expect(skipping.stats.holesRedecoded == 0)
        #expect(skipping.stats.framesDecoded < 250)
    }

    /// The same two cuts in other formats files come in: broadcast MPEG-2 in MPEG-TS (open
    /// groups of 15, B-frames shown before their I-frame), HEVC, and H.264 with open groups.
    @Test(arguments: [
        ("ts", ["-c:v", "mpeg2video", "-q:v", "4", "-g", "15", "-bf", "2", "-sc_threshold", "1000000000", "-f", "mpegts"]),
        ("mp4", ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "scenecut=0:keyint=50:bframes=4:b-adapt=0:log-level=error"]),
        ("mkv", ["-c:v", "libx264", "-preset", "veryfast", "-x264-params", "scenecut=0:keyint=50:open-gop=1:bframes=3:b-adapt=0"]),
    ])
    func cutsStayExactInOtherFormats(container: String, encoder: [String]) throws {
        let name = (encoder.first { $0.hasPrefix("lib") || $0.hasPrefix("mpeg") } ?? "x") + "." + container
        let source = try Self.clip(keyint: 250)
        let path = try Fixtures.shared.make("nonref-cuts-" + name) { output in ["-i", source] + encoder + [output] }
        let every = try decodeAll(path, Self.options(.all))
        let skipping = try decodeAll(path, Self.options(.nonref))
        #expect(Self.cutFrames(every) == [61, 137], "\(name)")
        #expect(Self.cutFrames(skipping) == Self.cutFrames(every), "\(name)")
        #expect(skipping.stats.framesSkipped > 0, "\(name): nothing skipped")
        #expect(skipping.stats.holesNotRedecoded == 0)
        // Never much more work than decoding every frame.
        #expect(Double(skipping.stats.framesDecoded + skipping.stats.framesRedecoded) <= Double(every.stats.framesDecoded) * 1.1,
                "\(name): \(skipping.stats.framesDecoded) + \(skipping.stats.framesRedecoded) against \(every.stats.framesDecoded)")
    }

    @Test func fixedRateSamplingNeverHoldsPacketsOrDecodesAgain() throws {
        // Fixed-rate sampling with nonref: no window, so no holes and no extra decoding.
        let path = try Self.clip(keyint: 50)
        let fixed = try decodeAll(path, SourceOptions(mode: .nonref, sampling: .perSecond(Rational(2, 1)), output: OutputFormat(width: 64, height: 36)))
        #expect(fixed.stats.holesRedecoded == 0 && fixed.stats.framesRedecoded == 0 && fixed.stats.framesSkipped == 0)
    }
}
