import SightlineCore

/// What a worker does with an item after trying it: a pure function of the delivery count and
/// the outcome, so the retry timeline is tested without a server.
public struct DeliveryPolicy: Sendable, Equatable {
    /// Deliveries in all (the consumer's MaxDeliver); after the last failed one the item goes
    /// to the dead-letter subject.
    public var maxDeliveries: Int = 3
    /// Redelivery delay after the first failure, doubled per failure, capped.
    public var retryDelay: Double = 2
    public var maximumRetryDelay: Double = 60

    public init(maxDeliveries: Int = 3, retryDelay: Double = 2, maximumRetryDelay: Double = 60) {
        self.maxDeliveries = maxDeliveries
        self.retryDelay = retryDelay
        self.maximumRetryDelay = maximumRetryDelay
    }

    public enum Outcome: Sendable, Equatable {
        case succeeded
        /// Its output was already complete (a redelivery after a worker died before acking).
        case alreadyDone
        case failed(permanent: Bool)
    }

    public enum Action: Sendable, Equatable {
        case ack
        case retry(after: Double)
        case deadLetter
    }

    public func action(for outcome: Outcome, delivery: Int) -> Action {
        switch outcome {
        case .succeeded, .alreadyDone: return .ack
        case .failed(let permanent):
            if permanent || delivery >= maxDeliveries { return .deadLetter }
            return .retry(after: ExponentialBackoff(initial: retryDelay, maximum: maximumRetryDelay, jitter: 0).delay(afterFailedRounds: delivery, unit: 0))
        }
    }
}
