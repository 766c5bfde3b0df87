/// Exponential backoff for reconnecting a lost live source, as a pure state machine: the
/// caller reports failures and successes, the machine answers with what to do next.
public struct ReconnectBackoff: Sendable, Equatable {
    public struct Policy: Sendable, Equatable {
        /// Attempts after a loss before giving up (0: give up at once).
        public var maxAttempts: Int
        public var initialDelay: Double
        public var multiplier: Double
        public var maxDelay: Double

        public init(maxAttempts: Int = 10, initialDelay: Double = 0.5, multiplier: Double = 2, maxDelay: Double = 8) {
            self.maxAttempts = maxAttempts
            self.initialDelay = initialDelay
            self.multiplier = multiplier
            self.maxDelay = maxDelay
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

    /// The source was lost or an attempt failed.
    public mutating func failed() -> Action {
        failures += 1
        if failures > policy.maxAttempts { return .giveUp(attempts: failures - 1) }
        var delay = policy.initialDelay
        for _ in 1..<failures { delay *= policy.multiplier }
        return .retry(attempt: failures, after: min(delay, policy.maxDelay))
    }

    /// Data flows again: the next loss starts from the initial delay.
    public mutating func succeeded() {
        failures = 0
    }
}
