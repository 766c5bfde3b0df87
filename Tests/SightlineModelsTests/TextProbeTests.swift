import Foundation
import Testing
import SightlineCore
import SightlineMedia
@testable import SightlineModels
import SightlineTestSupport

/// The reduced-size look for text before the full-size detector: the policy's timelines, and
/// the reader on rendered frames.
@Suite(.serialized) struct TextProbeTests {
    /// What a frame's reading does, for timelines: probe first or not, and what was found.
    enum Step: Equatable { case probeEmpty, probeThenFull(boxes: Int), full(boxes: Int) }

    /// Runs a timeline of frames 0.5 s apart from `start`: for each, what the probe would find
    /// and how many boxes the full-size detector would find; returns what the policy made the
    /// reader do.
    static func run(_ frames: [(probeFinds: Bool, boxes: Int)], policy: inout TextProbePolicy, start: Double = 0.5) -> [Step] {
        frames.enumerated().map { i, frame in
            let time = start + Double(i) * 0.5
            if policy.probeNext(at: time) {
                if !frame.probeFinds {
                    policy.record(probeFoundText: false, boxes: nil, at: time)
                    return .probeEmpty
                }
                policy.record(probeFoundText: true, boxes: frame.boxes, at: time)
                return .probeThenFull(boxes: frame.boxes)
            }
            policy.record(probeFoundText: nil, boxes: frame.boxes, at: time)
            return .full(boxes: frame.boxes)
        }
    }

    /// A policy whose source's first frame (at 0 s, no text) ran at full size, as every
    /// source's does; without periodic full-size runs unless `fullEvery` is given.
    static func started(fullEvery: Double = 0, at start: Double = 0) -> TextProbePolicy {
        var policy = TextProbePolicy(fullEvery: fullEvery)
        let probes = policy.probeNext(at: start)
        #expect(!probes, "a source's first frame runs at full size")
        policy.record(probeFoundText: nil, boxes: 0, at: start)
        return policy
    }

    /// Text too small for the probe: only the periodic full-size runs (every 5 s: every tenth
    /// frame at 2 frames/s) see it, and once one has, the frames after it run at full size.
    @Test func periodicFullRunsCatchTextTooSmallForTheProbe() {
        var policy = Self.started(fullEvery: 5)
        let empty = Self.run(Array(repeating: (false, 0), count: 20), policy: &policy)
        let full = empty.indices.filter { empty[$0] == .full(boxes: 0) }
        #expect(full == [9, 19], "at 5 s and 10 s: \(empty)")
        var small = Self.started(fullEvery: 5)
        // Tiny text from 1 s on: the probe never sees it.
        let steps = Self.run([(false, 0)] + Array(repeating: (false, 2), count: 12), policy: &small)
        #expect(steps.prefix(9).allSatisfy { $0 == .probeEmpty })
        #expect(steps[9] == .full(boxes: 2))
        #expect(steps[10...].allSatisfy { $0 == .full(boxes: 2) })
    }

    /// A full-size run whose boxes were all read as junk (below `readConfidence`) does not keep
    /// the next frame at full size; one that read text does.
    @Test func junkBoxesDoNotChainFullRuns() {
        var junk = Self.started(fullEvery: 5)
        let first = junk.probeNext(at: 5)
        #expect(!first, "the periodic full-size run is due")
        junk.record(probeFoundText: nil, boxes: 1, read: 0, at: 5)
        let afterJunk = junk.probeNext(at: 5.5)
        #expect(afterJunk)
        var text = Self.started(fullEvery: 5)
        _ = text.probeNext(at: 5)
        text.record(probeFoundText: nil, boxes: 1, read: 1, at: 5)
        let afterText = text.probeNext(at: 5.5)
        #expect(!afterText)
        // A probe whose boxes were all junk is not a false alarm: no back-off follows.
        var probed = Self.started()
        _ = probed.probeNext(at: 1)
        probed.record(probeFoundText: true, boxes: 2, read: 0, at: 1)
        let next = probed.probeNext(at: 1.5)
        #expect(next)
    }

    /// A clock that goes back (a live source that restarted) makes a full-size run due.
    @Test func timeGoingBackRunsAtFullSize() {
        var policy = Self.started(fullEvery: 5, at: 100)
        let later = policy.probeNext(at: 101)
        #expect(later)
        policy.record(probeFoundText: false, boxes: nil, at: 101)
        let back = policy.probeNext(at: 50)
        #expect(!back)
    }

    @Test func textFreeFramesOnlyProbe() {
        var policy = Self.started()
        let steps = Self.run(Array(repeating: (false, 0), count: 5), policy: &policy)
        #expect(steps == Array(repeating: .probeEmpty, count: 5))
    }

    /// Text appears: the probe sees it and the full run reads it; while text stays, frames run
    /// at full size at once; once a full run finds nothing, the next frame probes again.
    @Test func textOnScreenSkipsTheProbeUntilItGoes() {
        var policy = Self.started()
        let steps = Self.run([(false, 0), (true, 2), (true, 2), (true, 1), (false, 0), (false, 0)], policy: &policy)
        #expect(steps == [.probeEmpty, .probeThenFull(boxes: 2), .full(boxes: 2), .full(boxes: 1), .full(boxes: 0), .probeEmpty])
    }

    /// A scene whose texture looks like text to the smaller probe only: each false alarm is
    /// followed by full-size runs without a probe, 4, then 8, then 16 frames.
    @Test func falseAlarmsBackOffAndDouble() {
        var policy = Self.started()
        let steps = Self.run(Array(repeating: (true, 0), count: 1 + 4 + 1 + 8 + 1 + 16 + 1), policy: &policy)
        let probed = steps.indices.filter { if case .probeThenFull = steps[$0] { return true } else { return false } }
        #expect(probed == [0, 5, 14, 31])
        #expect(steps.allSatisfy { $0 != .probeEmpty })
    }

    /// The back-off stops growing at `longestBackOff` frames.
    @Test func theBackOffIsCapped() {
        var policy = Self.started()
        let steps = Self.run(Array(repeating: (true, 0), count: 400), policy: &policy)
        let probed = steps.indices.filter { if case .probeThenFull = steps[$0] { return true } else { return false } }
        let gaps = zip(probed.dropFirst(), probed).map { $0 - $1 - 1 }
        #expect(gaps.prefix(5) == [4, 8, 16, 32, 64])
        #expect(gaps.dropFirst(4).allSatisfy { $0 == TextProbePolicy.longestBackOff })
    }

    /// A probe that finds nothing ends the run of false alarms: the next false alarm backs off
    /// by the first step again.
    @Test func anEmptyProbeResetsTheBackOff() {
        var policy = Self.started()
        let frames: [(Bool, Int)] = [(true, 0)] + Array(repeating: (true, 0), count: 4) + [(false, 0), (true, 0)] + Array(repeating: (true, 0), count: 5)
        let steps = Self.run(frames, policy: &policy)
        #expect(steps[0] == .probeThenFull(boxes: 0))
        #expect(steps[1...4].allSatisfy { $0 == .full(boxes: 0) })
        #expect(steps[5] == .probeEmpty)
        #expect(steps[6] == .probeThenFull(boxes: 0))
        #expect(steps[7...10].allSatisfy { $0 == .full(boxes: 0) })
        #expect(steps[11] == .probeThenFull(boxes: 0))
    }

    /// `probeNext` outside `#expect`, which cannot call a mutating method.
    static func probes(_ policy: inout TextProbePolicy, at time: Double) -> Bool { policy.probeNext(at: time) }

    /// Remembered false alarms (`KnownFalseAlarms`) start no back-off the first two times in a
    /// row: the next frame probes again. A third in a row backs off 4 frames, and a probe that
    /// finds nothing new (`record(probeFoundText: false…)`) ends the run.
    @Test func rememberedFalseAlarmsNeedNoBackOff() {
        var policy = Self.started()
        let t = (0..<14).map { 0.5 + Double($0) * 0.5 }
        for i in 0..<3 {
            #expect(Self.probes(&policy, at: t[i]), "frame \(i) probes: no back-off after the first two remembered false alarms")
            policy.record(probeFoundText: true, boxes: 0, at: t[i], remembered: true)
        }
        var afterThird: [Bool] = []
        for i in 3..<8 { afterThird.append(policy.probeNext(at: t[i])) }
        #expect(afterThird == [false, false, false, false, true], "the third in a row backs off 4 frames: \(afterThird)")
        policy.record(probeFoundText: false, boxes: nil, at: t[7])
        for i in 8..<10 {
            #expect(Self.probes(&policy, at: t[i]), "an empty probe ended the run: frame \(i) probes")
            policy.record(probeFoundText: true, boxes: 0, at: t[i], remembered: true)
        }
        #expect(Self.probes(&policy, at: t[10]))
        policy.record(probeFoundText: true, boxes: 0, at: t[10], remembered: false)
        #expect(!Self.probes(&policy, at: t[11]), "a false alarm not remembered counts in full")
    }

    /// Known tiles: an alarm on them (or next to them) is explained, a change on a tile or its
    /// neighbour forgets it, a frame without a mask forgets all, another grid replaces them.
    @Test func knownFalseAlarmTimeline() {
        func mask(_ set: [(Int, Int)], columns: Int = 8, rows: Int = 6, tile: Int = 16) -> TileMask {
            var bits = [Bool](repeating: false, count: columns * rows)
            for (r, c) in set { bits[r * columns + c] = true }
            return TileMask(tileSize: tile, columns: columns, rows: rows, bits: bits)
        }
        let nothing = mask([])
        var known = KnownFalseAlarms()
        #expect(!known.explains(mask([(0, 1)])), "nothing is known at first")
        known.remember(mask([(0, 1), (0, 2)]))
        #expect(known.explains(mask([(0, 1)])))
        #expect(known.explains(mask([(0, 1), (0, 2)])))
        #expect(known.explains(mask([(0, 1), (1, 3)])), "an alarm's edge one tile beyond (diagonally) is explained")
        #expect(!known.explains(mask([(0, 1), (2, 1)])), "an alarm reaching two tiles beyond is new")
        #expect(!known.explains(mask([(0, 4)])), "so is one two tiles to the side")
        #expect(!known.explains(nothing), "no alarm is not an explained alarm")
        known.forget(changed: nothing)
        #expect(known.explains(mask([(0, 1), (0, 2)])), "nothing changed: still known")
        known.forget(changed: mask([(2, 5)]))
        #expect(known.explains(mask([(0, 1), (0, 2)])), "a change two tiles away leaves them")
        known.forget(changed: mask([(1, 3)]))
        #expect(known.explains(mask([(0, 0)])))
        #expect(!known.explains(mask([(0, 3)])), "a change on a neighbouring tile (diagonal) forgets it, and with it what lies next to it")
        known.remember(mask([(0, 2), (4, 4)]))
        #expect(known.explains(mask([(0, 1), (0, 2), (4, 4)])), "remembering adds to what is still known")
        known.forget(changed: nil)
        #expect(known.isEmpty && !known.explains(mask([(0, 1)])), "a frame without a mask forgets everything")
        known.remember(mask([(0, 1)]))
        known.forget(changed: mask([], columns: 9))
        #expect(known.isEmpty, "a mask of another grid forgets everything")
        known.remember(mask([(0, 1)]))
        known.remember(mask([(0, 0)], columns: 9))
        #expect(known.explains(mask([(0, 0)], columns: 9)) && !known.explains(mask([(0, 1)])), "another grid replaces the known tiles")
    }

    /// A full-size run's boxes un-know the tiles under them (grown by two pixels): a box from
    /// (30, 20) to (60, 40) on a 128×64 frame of 16 px tiles covers columns 1–3 and rows 1–2.
    @Test func boxesForgetTheTilesUnderThem() {
        let box = TextRecognizer.Box(corners: [SIMD2(30, 20), SIMD2(60, 20), SIMD2(60, 40), SIMD2(30, 40)], score: 0.9)
        let tiles = TextRecognizer.boxTiles([box], frameWidth: 128, frameHeight: 64, tileSize: 16)
        let set = tiles.bits.indices.filter { tiles.bits[$0] }.map { ($0 / tiles.columns, $0 % tiles.columns) }
        #expect(set.map(\.0) == [1, 1, 1, 2, 2, 2] && set.map(\.1) == [1, 2, 3, 1, 2, 3], "\(set)")
        var known = KnownFalseAlarms()
        var all = tiles
        all.bits = all.bits.map { _ in true }
        known.remember(all)
        known.forget(changed: tiles)
        let left = known.tiles.map { t in t.bits.indices.filter { t.bits[$0] }.map { $0 % t.columns } } ?? []
        #expect(Set(left) == [5, 6, 7] && left.count == 12, "columns 0–4 are within a tile of the box's: \(left)")
    }

    /// Text found during a back-off runs the next frame at full size too; frames after text
    /// do not use up the back-off, which goes on once the text has gone.
    @Test func textDuringABackOff() {
        var policy = Self.started()
        let steps = Self.run([(true, 0), (true, 3), (true, 3), (false, 0), (false, 0), (false, 0), (false, 0), (false, 0)], policy: &policy)
        #expect(steps == [.probeThenFull(boxes: 0), .full(boxes: 3), .full(boxes: 3), .full(boxes: 0),
                          .full(boxes: 0), .full(boxes: 0), .full(boxes: 0), .probeEmpty])
    }

    // MARK: - The reader on rendered frames

    /// A 1280×720 frame without text: a Mandelbrot set's colour bands (texture the
    /// full-size detector sees no line in).
    static func textFree() throws -> Frame {
        let path = Fixtures.shared.directory + "/probe-mandelbrot.png"
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "mandelbrot=s=1280x720:start_scale=2", "-frames:v", "1", path])
        let source = VideoSource(url: path, options: SourceOptions(output: OutputFormat(pixelFormat: .rgb24)))
        while let event = try source.next() { if case .frame(let frame) = event { return frame } }
        throw SightlineError.noVideoStream(input: path)
    }

    /// A source going text-free → text-free → text → text → text-free → text-free, 0.5 s
    /// apart: after the first frame, the text-free frames skip the full-size detector except the
    /// one right after text; every frame reads what the reader without a probe reads.
    @Test func theReaderSkipsTheDetectorOnlyWhereThereIsNoText() throws {
        let plain = try OCRChangedTilesTests.reader()
        let probing = try OCRChangedTilesTests.reader()
        probing.probeScale = Float(TextRecognizer.defaultProbeScale)
        let empty = try Self.textFree()
        let text = try OCRChangedTilesTests.screen(lines: 3, seconds: 20)
        var memory: TextRecognizer.TextMemory?
        var probedOnly: [Bool?] = []
        for (i, frame) in [empty, empty, text, text, empty, empty].enumerated() {
            var timed = frame
            timed.seconds = Double(i) * 0.5
            let lines = try probing.read(timed, changed: nil, memory: &memory)
            probedOnly.append(probing.lastWork.probedOnly)
            let want = try plain.read(frame)
            #expect(lines.map(\.text) == want.map(\.text))
        }
        // The first frame runs at full size (as every source's does), then the probe works.
        #expect(probedOnly == [nil, true, false, nil, nil, true], "\(probedOnly)")
        #expect(try plain.read(empty).isEmpty, "the full-size detector sees no text in the text-free frame either")
        #expect(try plain.read(text).count == 4)
    }

    /// vtest.avi (a fixed street camera, 768×576): at the probe's 512×384 the windows of the
    /// building at the top left look like text on every frame, and the full-size detector finds
    /// no box there. Frames half a second apart, the regions node's mask given:
    /// - with nothing changed near the alarm, the first alarm is refuted by one full-size run
    ///   and later probes skip it; an alarm elsewhere is new (a full run);
    /// - a change on the alarm's tiles makes the next probe's alarm new again (a full run),
    ///   and the frame after it probes only;
    /// - a refresh frame (no mask) forgets it, and its full-size run learns it again;
    /// - without any mask, or with the memory off, the back-off keeps the frames at full size.
    /// Every frame reads what the reader without a probe reads (nothing).
    @Test func aRefutedAlarmOnUnchangedTilesSkipsTheFullRun() throws {
        let source = VideoSource(url: try SampleVideos.path("vtest.avi"), options: SourceOptions(output: OutputFormat(pixelFormat: .rgb24)))
        var frames: [Frame] = []
        while frames.count < 7, let event = try source.next() {
            if case .frame(let frame) = event, frame.decodeIndex % 5 == 0 { frames.append(frame) }
        }
        try #require(frames.count == 7)
        let grid = (columns: (frames[0].width + 15) / 16, rows: (frames[0].height + 15) / 16)
        let still = TileMask(tileSize: 16, columns: grid.columns, rows: grid.rows, bits: [Bool](repeating: false, count: grid.columns * grid.rows))
        var nearAlarm = still
        // Tile row 1, columns 6–13: on the windows' alarm tiles (rows 0–1, columns 7–12), as
        // someone walking past them would be.
        for c in 6...13 { nearAlarm.bits[grid.columns + c] = true }
        func probedOnly(remember: Bool, masks: [TileMask?]) throws -> [Bool?] {
            let reader = try OCRChangedTilesTests.reader()
            reader.probeScale = Float(TextRecognizer.defaultProbeScale)
            reader.rememberFalseAlarms = remember
            var memory: TextRecognizer.TextMemory?
            return try frames.indices.map { i in
                var timed = frames[i]
                timed.seconds = Double(i) * 0.5
                let lines = try reader.read(timed, changed: masks[i], memory: &memory)
                #expect(lines.isEmpty, "frame \(i): \(lines.map(\.text))")
                return reader.lastWork.probedOnly
            }
        }
        let still7: [TileMask?] = [nil] + Array(repeating: still, count: 6)
        let remembered = try probedOnly(remember: true, masks: still7)
        // At 2.5 s (frame 5) a second texture may raise an alarm of its own (on this machine's
        // AVX-512 kernels, two tiles by the parked van, top right): being new, it gets a
        // full-size run, and is known from then on. Its map values lie near the probe's bar, so
        // whether it shows depends on the kernels' rounding; frame 5 is left free.
        func steady(_ steps: [Bool?]) -> [Bool?] { steps.enumerated().filter { $0.offset != 5 }.map(\.element) }
        #expect(steady(remembered) == [nil, false, true, true, true, true], "\(remembered)")
        var moved = still7
        moved[3] = nearAlarm
        let afterChange = try probedOnly(remember: true, masks: moved)
        #expect(steady(afterChange) == [nil, false, true, false, true, true], "\(afterChange)")
        #expect(afterChange[5] == remembered[5], "a change at 1.5 s does not decide 2.5 s")
        var refreshed = still7
        refreshed[3] = nil
        let afterRefresh = try probedOnly(remember: true, masks: refreshed)
        #expect(afterRefresh == afterChange, "a refresh (no mask) forgets the alarm and learns it again: \(afterRefresh)")
        let withoutMasks = try probedOnly(remember: true, masks: Array(repeating: nil, count: 7))
        #expect(withoutMasks == [nil, false, nil, nil, nil, nil, false], "\(withoutMasks)")
        let off = try probedOnly(remember: false, masks: still7)
        #expect(off == withoutMasks, "\(off)")
    }

    /// A 1280×720 frame whose only text is a 12 px line: too small for the probe (its map
    /// stays near 1e-5 there, measured), read by the full-size detector.
    static func tinyText() throws -> Frame {
        let path = Fixtures.shared.directory + "/probe-tiny.png"
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "color=c=0x406080:s=1280x720", "-vf",
                                "drawtext=fontfile=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf:text='Departure at 10 45 from platform 3':fontsize=12:fontcolor=white:x=400:y=600",
                                "-frames:v", "1", path])
        return try OCRTests.decode(path)
    }

    /// Tiny text from 2 s on, frames 1 s apart: the probe misses it, the full-size run due
    /// 5 s after the first frame reads it, and the frames after that read it too. Without the
    /// periodic runs it is never read; without the probe, from 2 s.
    @Test func tinyTextIsReadAtTheNextFullSizeRun() throws {
        let plainFrame = try OCRTests.decode(try { () throws -> String in
            let path = Fixtures.shared.directory + "/probe-plain.png"
            try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "color=c=0x406080:s=1280x720", "-frames:v", "1", path])
            return path
        }())
        let tiny = try Self.tinyText()
        let frames = [plainFrame, plainFrame, tiny, tiny, tiny, tiny, tiny]
        func reads(probe: Float, fullEvery: Double) throws -> [Bool] {
            let reader = try OCRChangedTilesTests.reader()
            reader.probeScale = probe
            reader.probeFullEvery = fullEvery
            var memory: TextRecognizer.TextMemory?
            return try frames.enumerated().map { i, frame in
                var timed = frame
                timed.seconds = Double(i)
                return try reader.read(timed, changed: nil, memory: &memory).contains { $0.text.contains("platform") }
            }
        }
        let scale = Float(TextRecognizer.defaultProbeScale)
        #expect(try reads(probe: 0, fullEvery: 5) == [false, false, true, true, true, true, true], "the full-size detector reads 12 px text")
        let periodic = try reads(probe: scale, fullEvery: 5), probeOnly = try reads(probe: scale, fullEvery: 0)
        #expect(periodic == [false, false, false, false, false, true, true], "\(periodic)")
        #expect(probeOnly == [false, false, false, false, false, false, false], "the probe alone misses it: \(probeOnly)")
    }

    /// Frames so small that the probe's input, rounded to 32 px, is nearly the full one are
    /// not probed: a 40×40 frame gives a 32×32 probe for a 32×32 input.
    @Test func smallFramesAreNotProbed() throws {
        let reader = try OCRChangedTilesTests.reader()
        reader.probeScale = Float(TextRecognizer.defaultProbeScale)
        let path = Fixtures.shared.directory + "/probe-small.png"
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "color=c=0x808080:s=40x40", "-frames:v", "1", path])
        let frame = try OCRTests.decode(path)
        var memory: TextRecognizer.TextMemory?
        _ = try reader.read(frame, changed: nil, memory: &memory)
        #expect(reader.lastWork.probedOnly == nil, "\(frame.width)×\(frame.height)")
        let larger = try Self.textFree()
        _ = try reader.read(larger, changed: nil, memory: &memory)
        #expect(reader.lastWork.probedOnly == true, "the source's first frame ran at full size, so this one probes")
    }
}
