/// The wait before the next try: exponential in the tries that failed, capped, with
/// multiplicative jitter. A pure function of its inputs (the random draw is passed in), so its
/// timeline is tested without a server. Used by NATS reconnects, model-server retries and
/// work-queue redeliveries (jitter 0).
public struct ExponentialBackoff: Sendable, Equatable {
    /// Seconds after the first failed round.
    public var initial: Double = 0.25
    /// Seconds, at most, between rounds.
    public var maximum: Double = 5
    /// ± this fraction of the delay is random.
    public var jitter: Double = 0.2

    public init(initial: Double = 0.25, maximum: Double = 5, jitter: Double = 0.2) {
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
    }

    /// `unit` is a uniform draw in [0, 1). Rounds below 1 count as 1.
    public func delay(afterFailedRounds rounds: Int, unit: Double) -> Double {
        let exponent = min(max(rounds, 1) - 1, 30)
        let base = min(maximum, initial * Double(1 << exponent))
        let spread = 1 - jitter + 2 * jitter * min(max(unit, 0), 1)
        return min(maximum, base * spread)
    }
}
