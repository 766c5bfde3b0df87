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
///   again;
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
    public mutating func record(probeFoundText: Bool?, boxes: Int?, read: Int? = nil, at time: Double) {
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
            backOffLeft = min(Self.longestBackOff, Self.firstBackOff << min(falseAlarms - 1, 6))
        }
    }
}
