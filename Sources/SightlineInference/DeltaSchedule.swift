/// How delta execution runs each frame, as a pure state machine (timeline-tested apart from
/// the models). Three modes:
/// - `masked`: recompute only what the changed tiles reach, from the cached activations;
/// - `dense`: run every layer on the new frame and cache the activations for the next one;
/// - `plain`: run the model as `run` does and keep no cache (caching every layer costs ~5%).
///
/// Two situations make the cache a loss. A moving camera: from the second mostly changed frame
/// in a row the runs are plain (one refresh followed by calm frames, a shot change, still
/// caches), and the first calm frame refills the cache. And changes that
/// look small but spread: a masked run that saved less than `minSaving` of the work (on
/// EfficientNet, receptive fields carry 10–25% changed tiles over nearly every deep layer)
/// costs bookkeeping for nothing, so the following frames run plain, 2, 4, 8 … up to
/// `maxBackoff` of them after each unprofitable masked run in a row, before caching and trying
/// the masked path again. A profitable masked run clears the backoff.
public struct DeltaSchedule: Sendable, Equatable {
    public enum Mode: Sendable, Equatable { case plain, dense, masked }

    public var maxBackoff: Int
    /// Consecutive mostly changed frames.
    public private(set) var movingStreak = 0
    /// Plain frames the next unprofitable masked run buys (0: none yet).
    public private(set) var backoff = 0
    /// Plain frames left before the masked path is tried again.
    public private(set) var plainLeft = 0

    public init(maxBackoff: Int = 32) {
        self.maxBackoff = max(1, maxBackoff)
    }

    /// The mode of the next frame. `changed`: the fraction of input positions that changed, nil
    /// for a refresh (first frame, shot change, periodic refresh, new size); `hasCache`: the
    /// state holds activations for this input shape; `denseAbove`: a fraction above which the
    /// frame counts as mostly changed.
    public mutating func next(changed: Double?, hasCache: Bool, denseAbove: Double) -> Mode {
        let mostlyChanged = changed.map { $0 > denseAbove } ?? true
        movingStreak = mostlyChanged ? movingStreak + 1 : 0
        if plainLeft > 0 {
            plainLeft -= 1
            return .plain
        }
        if mostlyChanged { return movingStreak > 1 ? .plain : .dense }
        return hasCache ? .masked : .dense
    }

    /// What a masked run saved (fraction of the dense multiply-accumulates).
    public mutating func record(maskedSaving saved: Double, minSaving: Double) {
        if saved < minSaving {
            backoff = backoff == 0 ? 2 : min(backoff * 2, maxBackoff)
            plainLeft = backoff
        } else {
            backoff = 0
        }
    }
}
