/// Maps a live source's raw timestamps onto a monotonic timeline. Live streams reset or jump
/// their clocks (encoder restarts, MPEG-TS 33-bit wrap, reconnects); downstream nodes need time
/// that only moves forward. Pure: feed it raw seconds and wall-clock, it returns output seconds.
public struct LiveTimeline: Sendable {
    /// A raw step larger than this (or any step backwards) is a discontinuity, not motion.
    public var maxJump: Double
    private var offset: Double = 0
    private var lastRaw: Double?
    private var lastOutput: Double?
    private var lastStep: Double = 1.0 / 30
    private var pendingGap: Double?

    public init(maxJump: Double = 5) {
        self.maxJump = maxJump
    }

    /// The source was lost and came back after `seconds` of wall-clock time: the next frame is
    /// placed that far after the last one, whatever its raw timestamp says.
    public mutating func noteGap(seconds: Double) {
        pendingGap = max(seconds, 0)
    }

    /// Where another stream of the same source (its audio) at raw time `raw` falls on the
    /// timeline, by the offset the frames set; nil before the first frame and right after a
    /// loss, when the offset is not known yet.
    public func place(raw: Double) -> Double? {
        guard lastRaw != nil, pendingGap == nil else { return nil }
        return raw - offset
    }

    public mutating func map(raw: Double) -> Double {
        guard let lastRaw, let lastOutput else {
            self.lastRaw = raw
            self.lastOutput = raw - offset
            return raw - offset
        }
        let step = raw - lastRaw
        if let gap = pendingGap {
            offset = raw - (lastOutput + max(gap, lastStep))
            pendingGap = nil
        } else if step < 0 || step > maxJump {
            offset = raw - (lastOutput + lastStep)
        } else if step > 0 {
            lastStep = step
        }
        var output = raw - offset
        // Equal raw stamps (rare, but seen with broken muxers) stay equal rather than reorder.
        if output < lastOutput { output = lastOutput }
        self.lastRaw = raw
        self.lastOutput = output
        return output
    }
}
