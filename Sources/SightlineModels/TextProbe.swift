import SightlineCore

/// Whether a source's next frame first looks for text at a reduced size (the probe) before the
/// text detector runs at full size. Most footage has no text on most frames, and the detector
/// (a dense model at up to 960 px) is the largest cost of reading a frame; a probe at 2/3 of the
/// size costs about 0.44 of a full run, and when its map holds no text anywhere the full run
/// is skipped. Measured on 659 frames of eleven clips at 2/3 of the size, a probe that found no
/// text never hid a reading the filter would have published.
///
/// Where text is on screen, a probe is wasted work (the full run follows anyway), and on some
/// scenes the smaller picture shows text-like texture the full-size detector does not confirm
/// (vtest.avi at 512 px: every frame). So, per source:
/// - after a full run that read text (a box read with confidence of at least
///   `readConfidence`), the next frame runs at full size at once. Boxes read as junk (a
///   texture taken for one low-confidence letter) do not count: they would otherwise chain
///   full-size runs on text-free footage;
/// - after a probe found text that the full run did not confirm (a false alarm), the source
///   runs at full size only for a back-off of 4, 8, 16 … up to 64 frames before it probes
///   again. Where the alarm's tiles are remembered (`KnownFalseAlarms`), the first two false
///   alarms of a run need no back-off: a probe that raises one again on unchanged pixels costs
///   only the probe. Alarms that keep landing elsewhere back off from the third on;
/// - a probe that finds nothing ends the run of false alarms;
/// - a source's first frame, and a frame `fullEvery` seconds of media time after the last
///   full-size run, run at full size: text too small for the probe (under about 13 px on a
///   720p frame, measured) is then read within that long of appearing, and once it is read
///   the frames after it run at full size.
/// Pure state; `TextRecognizer` keeps one per source in its `TextMemory`.
public struct TextProbePolicy: Sendable, Equatable {
    /// Frames that run at full size only after the first false alarm; doubled after each further one.
    public static let firstBackOff = 4
    public static let longestBackOff = 64
    /// Remembered false alarms in a row that start no back-off. With the alarm's tiles known, a
    /// probe costs 0.44 of a full run and a new alarm 1.44, so probing on pays while fewer than
    /// about half the probes raise new alarms (vtest.avi: 24 of 159 frames, people walking by
    /// texture that looks like text at the probe's size).
    public static let freeRememberedAlarms = 2

    /// Seconds of media time between full-size runs however empty the probes (0: no such runs
    /// after the first frame).
    public var fullEvery: Double
    /// Media time of the last full-size run (nil: none yet).
    private var lastFull: Double?
    /// A box read with less confidence than this is junk to the policy (the `ocr` node
    /// publishes nothing under 0.6 by default).
    public static let readConfidence: Float = 0.5

    /// The last full-size run read text.
    private var textSeen = false
    /// Probe positives in a row that the full run did not confirm.
    private var falseAlarms = 0
    /// Frames left that run at full size only before the next probe.
    private var backOffLeft = 0

    public init(fullEvery: Double = 0) {
        self.fullEvery = fullEvery
    }

    /// Whether the frame at `time` (seconds of media time) probes first. Consumes one frame of
    /// a back-off.
    public mutating func probeNext(at time: Double) -> Bool {
        guard let lastFull else { return false }
        // Time going backwards (a live source that restarted its clock) counts as due.
        if fullEvery > 0 && (time < lastFull || time - lastFull >= fullEvery) { return false }
        if textSeen { return false }
        if backOffLeft > 0 {
            backOffLeft -= 1
            return false
        }
        return true
    }

    /// What the frame at `time` found. `probeFoundText` is nil when the frame did not probe;
    /// `boxes` is nil when the full-size detector did not run (the probe found nothing), and
    /// `read` is how many of them were read with at least `readConfidence` (all of them when
    /// not given).
    /// `remembered`: a false alarm's tiles are now known (`KnownFalseAlarms`), so the first
    /// `freeRememberedAlarms` of a run start no back-off.
    public mutating func record(probeFoundText: Bool?, boxes: Int?, read: Int? = nil, at time: Double, remembered: Bool = false) {
        if boxes != nil { lastFull = time }
        if probeFoundText == false {
            textSeen = false
            falseAlarms = 0
            return
        }
        let found = (boxes ?? 0) > 0
        textSeen = (read ?? boxes ?? 0) > 0
        // A false alarm is a probe the detector found no box for at all.
        if probeFoundText == true && !found {
            falseAlarms += 1
            let unexplained = remembered ? falseAlarms - Self.freeRememberedAlarms : falseAlarms
            backOffLeft = unexplained <= 0 ? 0 : min(Self.longestBackOff, Self.firstBackOff << min(unexplained - 1, 6))
        }
    }
}

/// Where a source's probe raised a false alarm: tiles (the `regions` node's grid) on which the
/// probe saw text-like texture that the full-size detector then found no box on or next to. A
/// fixed camera showing such texture (a window grid, a fence, brick) raises the same alarm on
/// every probe; without this, every frame after the back-off runs at full size for nothing
/// (vtest.avi: the building's windows, 8–10 tiles, on all 159 frames). A probe whose every
/// alarm lies on known tiles (or next to one) found nothing new, and the full-size run is
/// skipped.
///
/// A tile stays known only while it and its eight neighbours stay unchanged (the regions node's
/// mask, the same noise-robust test that gates the models): the detector's answer at a tile
/// depends on pixels around it. Without a mask for a frame (a refresh, a shot change) nothing
/// known before is kept, and the frame's own refuted alarm is learned in the last mask's grid;
/// without a regions node nothing is remembered. Periodic full-size runs
/// (`TextProbePolicy.fullEvery`) still come, so text the probe's alarm hides is read within
/// that long, as text too small for the probe is. Pure state, kept per source in
/// `TextRecognizer.TextMemory`.
public struct KnownFalseAlarms: Sendable, Equatable {
    /// The known tiles (nil: none).
    public private(set) var tiles: TileMask?
    /// The tile size of the last mask seen (nil: none yet, so no regions node to keep tiles
    /// known): a frame without a mask (a refresh) still learns its alarm's tiles in that grid.
    public private(set) var tileSize: Int?

    public init() {}

    public var isEmpty: Bool { tiles.map { !$0.bits.contains(true) } ?? true }

    /// Forgets every known tile that changed or borders a change; with no mask, or a mask of
    /// another grid, forgets everything.
    public mutating func forget(changed: TileMask?) {
        if let changed { tileSize = changed.tileSize }
        guard let known = tiles else { return }
        guard let changed, Self.sameGrid(known, changed) else { tiles = nil; return }
        tiles = TileMask(tileSize: known.tileSize, columns: known.columns, rows: known.rows,
                         bits: zip(known.bits, Self.grown(changed).bits).map { $0 && !$1 })
    }

    /// Whether the probe's alarm (tiles of the same grid) lies wholly on known tiles or next to
    /// one: an alarm's edge wobbles by a tile from frame to frame (vtest.avi: a tenth tile on
    /// every other frame). A neighbour is unchanged too, since a change forgets the known
    /// tiles around it.
    public func explains(_ alarm: TileMask) -> Bool {
        guard let known = tiles, Self.sameGrid(known, alarm), alarm.bits.contains(true) else { return false }
        return zip(alarm.bits, Self.grown(known).bits).allSatisfy { !$0 || $1 }
    }

    /// The full-size run refuted the probe's `alarm`: its tiles join the known ones (those of
    /// another grid are dropped). Where that run found boxes, `forget(changed:)` their tiles.
    public mutating func remember(_ alarm: TileMask) {
        guard let known = tiles, Self.sameGrid(known, alarm) else { tiles = alarm; return }
        tiles = TileMask(tileSize: known.tileSize, columns: known.columns, rows: known.rows, bits: zip(known.bits, alarm.bits).map { $0 || $1 })
    }

    /// The mask's tiles and their eight neighbours: what a change reaches (`forget`), and
    /// where a known alarm may wobble to (`explains`).
    static func grown(_ mask: TileMask) -> TileMask {
        var bits = mask.bits
        for row in 0..<mask.rows {
            for column in 0..<mask.columns where mask[row, column] {
                for r in max(0, row - 1)...min(mask.rows - 1, row + 1) {
                    for c in max(0, column - 1)...min(mask.columns - 1, column + 1) { bits[r * mask.columns + c] = true }
                }
            }
        }
        return TileMask(tileSize: mask.tileSize, columns: mask.columns, rows: mask.rows, bits: bits)
    }

    static func sameGrid(_ a: TileMask, _ b: TileMask) -> Bool {
        a.tileSize == b.tileSize && a.columns == b.columns && a.rows == b.rows
    }
}
