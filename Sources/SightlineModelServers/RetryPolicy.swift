import SightlineCore

/// When to try a model server again, as a pure state machine (timeline-tested): growing
/// delays with jitter after a 5xx, a dropped connection or a timeout; the server's own
/// `Retry-After` after a 429 (within a cap); never after a request the server refuses
/// (4xx other than 408 and 429) or an answer that cannot be read, which a retry would
/// only repeat.
public struct RetryPolicy: Sendable, Equatable {
    public enum Failure: Error, Sendable, Equatable {
        case status(Int, retryAfter: Double?)
        case timeout
        case connection(String)
        case malformed(String)
    }

    public enum Decision: Sendable, Equatable {
        case retry(after: Double)
        case giveUp(reason: String)
    }

    /// Attempts after the first.
    public var retries: Int
    public var initialDelay: Double
    public var maximumDelay: Double
    /// ± this fraction of the delay, so many clients do not come back in step.
    public var jitter: Double
    /// A `Retry-After` longer than this is not waited for: the caption would be too late.
    public var maximumRetryAfter: Double

    public init(retries: Int = 2, initialDelay: Double = 0.5, maximumDelay: Double = 8, jitter: Double = 0.2, maximumRetryAfter: Double = 30) {
        self.retries = max(0, retries)
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.jitter = jitter
        self.maximumRetryAfter = maximumRetryAfter
    }

    /// After attempt `attempt` (1-based) failed with `failure`; `unit` is a random number in
    /// [0, 1) for the jitter.
    public func decide(after attempt: Int, failed failure: Failure, unit: Double) -> Decision {
        let reason = Self.describe(failure)
        switch failure {
        case .malformed:
            return .giveUp(reason: reason)
        case .status(let code, _) where (400..<500).contains(code) && code != 408 && code != 429:
            return .giveUp(reason: reason)
        default:
            break
        }
        guard attempt <= retries else { return .giveUp(reason: reason + " (after \(attempt) attempts)") }
        if case .status(429, let retryAfter?) = failure {
            guard retryAfter <= maximumRetryAfter else {
                return .giveUp(reason: reason + " (Retry-After \(retryAfter) s is beyond \(maximumRetryAfter) s)")
            }
            return .retry(after: max(0, retryAfter))
        }
        return .retry(after: ExponentialBackoff(initial: initialDelay, maximum: maximumDelay, jitter: jitter).delay(afterFailedRounds: attempt, unit: unit))
    }

    public static func describe(_ failure: Failure) -> String {
        switch failure {
        case .status(let code, _): "HTTP \(code)"
        case .timeout: "timed out"
        case .connection(let why): "connection: \(why)"
        case .malformed(let why): "unreadable answer: \(why)"
        }
    }

    /// `Retry-After` as seconds (the HTTP-date form is not used by these servers; nil then).
    public static func retryAfterSeconds(_ header: String?) -> Double? {
        guard let header, let seconds = Double(header.trimmingCharacters(in: .whitespaces)), seconds >= 0, seconds.isFinite else { return nil }
        return seconds
    }
}
