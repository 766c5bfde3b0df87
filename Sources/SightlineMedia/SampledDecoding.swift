import SightlineCore

/// `mode: sampled`: which packets the decoder needs when frames are kept at N per second
/// (`SamplingPolicy.perSecond`) from a stream whose only entry points are keyframes at a
/// steady interval, as live cameras send (a keyframe every 1–2 s, no B-frames). A kept frame
/// needs every packet from its keyframe up to itself; the packets after the last kept frame
/// before the next keyframe serve nothing, so they are never decoded. At 2 frames/s and a
/// keyframe each second that is frames 16–29 of every 30.
///
/// A pure state machine, fed each video packet in decode order with the sampler's state as it
/// stands (every earlier frame already decoded and sampled):
/// - The next keyframe is predicted once the last two intervals between keyframes agree
///   within 2 % (half a frame for a keyframe a second at 25–30 frames/s: a looped or
///   re-muxed stream shifts by a fraction of a frame at its seams); the prediction is the
///   longer of the two. Until then every packet is decoded.
/// - Packets without a timestamp, or whose timestamps do not rise (B-frames, a jump back),
///   forget the prediction: every packet is decoded until it is learned again.
/// - A sampling slot that opens less than a quarter slot before the next keyframe gets the
///   keyframe as its frame (the source restarts the slots at every kept keyframe, so a clock
///   that drifts against the nominal rate keeps them on the keyframes).
/// - A keyframe later than predicted delays the frame that was due to it; such a delay is
///   counted (`delayedSamples`) and the prediction is learned again.
/// - A damaged frame after skipped packets (the keyframe was not a clean entry point) switches
///   skipping off until `reset`.
public struct SampledDecodePlanner: Sendable, Equatable {
    public enum Decision: Sendable, Equatable { case decode, skip }

    /// Packets never sent to the decoder, over every connection.
    public private(set) var skippedPackets = 0
    /// Kept frames that came later than the sampling asked because a keyframe came later than
    /// predicted (the frames before it had not been decoded), over every connection.
    public private(set) var delayedSamples = 0
    /// Skipping was switched off after a damaged frame (until `reset`).
    public private(set) var disabled = false

    private var keyframes: [Int64] = []
    private var lastPTS: Int64?
    /// Packets since the last keyframe, and the mean frame duration over the last complete
    /// group of pictures.
    private var packetsInGroup = 0
    private var frameStep: Int64 = 0
    /// While set, non-key packets are skipped until a keyframe; the predicted keyframe.
    private var skippingUntil: Int64?
    private var lateSeen = false
    /// Whether packets were skipped since the last keyframe, and whether the group of pictures
    /// now decoding began after skipped packets (a damaged frame in it is then ours).
    private var skippedSinceKey = false
    private var groupFollowsSkip = false

    public init() {}

    /// A new connection: its timestamps start afresh, and skipping may start again; the
    /// counters go on.
    public mutating func reset() {
        let counted = (skippedPackets, delayedSamples)
        self = SampledDecodePlanner()
        (skippedPackets, delayedSamples) = counted
    }

    /// The keyframe after the last one, when the last two intervals agree.
    var predictedKeyframe: Int64? {
        guard keyframes.count == 3 else { return nil }
        let a = keyframes[1] - keyframes[0], b = keyframes[2] - keyframes[1]
        guard a > 0, b > 0, abs(a - b) * 50 <= max(a, b) else { return nil }
        return keyframes[2] + max(a, b)
    }

    /// Decides for one video packet. `pts` in `timeBase`; `sampler`: the source's sampler, as
    /// it stands after every earlier frame.
    public mutating func decide(pts: Int64?, isKey: Bool, timeBase: Rational, sampler: FrameSampler) -> Decision {
        guard let pts, lastPTS.map({ pts > $0 }) ?? true else {
            // No timestamp or reordered ones: nothing can be predicted. A skip in progress
            // still has to wait for a keyframe (the decoder lacks the references).
            lastPTS = pts ?? lastPTS
            keyframes.removeAll()
            packetsInGroup = 0
            if skippingUntil != nil, !isKey { return skip() }
            skippingUntil = nil
            return .decode
        }
        lastPTS = pts
        packetsInGroup += 1
        if isKey {
            if let last = keyframes.last, packetsInGroup > 1 { frameStep = (pts - last) / Int64(packetsInGroup - 1) }
            packetsInGroup = 1
            skippingUntil = nil
            lateSeen = false
            groupFollowsSkip = skippedSinceKey
            skippedSinceKey = false
            keyframes.append(pts)
            if keyframes.count > 3 { keyframes.removeFirst() }
            return .decode
        }
        if let predicted = skippingUntil {
            if pts >= predicted, !lateSeen {
                // The keyframe is late: if a frame is due here, it waits for the keyframe.
                lateSeen = true
                if sampler.keepsAny(before: Timestamp(pts: pts + 1, timeBase: timeBase)) {
                    delayedSamples += 1
                }
                keyframes.removeAll()
                packetsInGroup = 0
            }
            return skip()
        }
        // A slot that opens less than a quarter slot (and at least half a frame: timestamps of
        // live streams jitter) before the keyframe takes the keyframe as its frame, and the
        // source starts the slots afresh there (`FrameSampler.anchor`).
        guard !disabled, frameStep > 0, let next = predictedKeyframe, pts < next, let slot = sampler.slotTicks(timeBase: timeBase),
              !sampler.keepsAny(before: Timestamp(pts: next - max(slot / 4, frameStep / 2) + 1, timeBase: timeBase))
        else { return .decode }
        skippingUntil = next
        return skip()
    }

    /// A decoded frame was damaged: after skipped packets, the keyframe was no clean entry
    /// point (an open GOP), so skipping stops.
    public mutating func frameWasDamaged() {
        if groupFollowsSkip || skippedSinceKey { disabled = true }
    }

    private mutating func skip() -> Decision {
        skippedPackets += 1
        skippedSinceKey = true
        return .skip
    }
}
