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
/// - after a full run that found text boxes, the next frame runs at full size at once;
/// - after a probe found text that the full run did not confirm (a false alarm), the source
///   runs at full size only for a back-off of 4, 8, 16 … up to 64 frames before it probes
///   again;
/// - a probe that finds nothing ends the run of false alarms.
/// Pure state; `TextRecognizer` keeps one per source in its `TextMemory`.
public struct TextProbePolicy: Sendable, Equatable {
    /// Frames that run at full size only after the first false alarm; doubled after each further one.
    public static let firstBackOff = 4
    public static let longestBackOff = 64

    /// The last full-size run found text boxes.
    private var textSeen = false
    /// Probe positives in a row that the full run did not confirm.
    private var falseAlarms = 0
    /// Frames left that run at full size only before the next probe.
    private var backOffLeft = 0

    public init() {}

    /// Whether the next frame probes first. Consumes one frame of a back-off.
    public mutating func probeNext() -> Bool {
        if textSeen { return false }
        if backOffLeft > 0 {
            backOffLeft -= 1
            return false
        }
        return true
    }

    /// What a frame's reading found. `probeFoundText` is nil when the frame did not probe;
    /// `boxes` is nil when the full-size detector did not run (the probe found nothing).
    public mutating func record(probeFoundText: Bool?, boxes: Int?) {
        if probeFoundText == false {
            textSeen = false
            falseAlarms = 0
            return
        }
        let found = (boxes ?? 0) > 0
        textSeen = found
        if probeFoundText == true && !found {
            falseAlarms += 1
            backOffLeft = min(Self.longestBackOff, Self.firstBackOff << min(falseAlarms - 1, 6))
        }
    }
}
