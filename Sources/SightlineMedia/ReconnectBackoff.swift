/// Exponential backoff for reconnecting a lost live source, as a pure state machine: the
/// caller reports failures and successes, the machine answers with what to do next.
public struct ReconnectBackoff: Sendable, Equatable {
    public struct Policy: Sendable, Equatable {
        /// Attempts after a loss before giving up (0: give up at once).
        public var maxAttempts: Int
        public var initialDelay: Double
        public var multiplier: Double
        public var maxDelay: Double
        /// The delay after an attempt the other side refused (nothing listening: the camera
        /// or its encoder is restarting). Refusals cost nothing, and a camera that comes back
        /// should be read within this long, not after a grown exponential delay (with 8 s, a
        /// restarted TCP source stayed unread for up to 8 s).
        public var refusedDelay: Double

        public init(maxAttempts: Int = 10, initialDelay: Double = 0.5, multiplier: Double = 2, maxDelay: Double = 8, refusedDelay: Double = 0.5) {
            self.maxAttempts = maxAttempts
            self.initialDelay = initialDelay
            self.multiplier = multiplier
            self.maxDelay = maxDelay
            self.refusedDelay = refusedDelay
        }
    }

    public enum Action: Sendable, Equatable {
        /// Wait this many seconds, then make attempt number `attempt` (1-based).
        case retry(attempt: Int, after: Double)
        case giveUp(attempts: Int)
    }

    public let policy: Policy
    public private(set) var failures = 0

    public init(policy: Policy) {
        self.policy = policy
    }

    /// Until when the current (counted) attempt's delay runs: refusals inside it are quick
    /// extra tries, not attempts, so a source refused for a minute gives up on the same
    /// schedule as one that does not answer.
    private var windowEnd = -Double.infinity

    /// The source was lost or an attempt failed at `now` (seconds, any monotonic clock);
    /// `refused` when the other side answered that nothing is there (connection refused).
    public mutating func failed(refused: Bool = false, now: Double = 0) -> Action {
        if refused, now < windowEnd {
            return .retry(attempt: failures, after: min(policy.refusedDelay, policy.maxDelay))
        }
        failures += 1
        if failures > policy.maxAttempts { return .giveUp(attempts: failures - 1) }
        var delay = policy.initialDelay
        for _ in 1..<failures { delay *= policy.multiplier }
        delay = min(delay, policy.maxDelay)
        windowEnd = now + delay
        return .retry(attempt: failures, after: refused ? min(policy.refusedDelay, delay) : delay)
    }

    /// Data flows again: the next loss starts from the initial delay.
    public mutating func succeeded() {
        failures = 0
        windowEnd = -Double.infinity
    }
}
