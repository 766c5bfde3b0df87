import Dispatch
import Foundation
import Synchronization

/// Time as the graph sees it. Real runs use `SystemClock`; the harness a `ManualClock`.
public protocol GraphClock: Sendable {
    /// Wall-clock seconds since 1970 (what messages carry).
    func now() -> Double
}

public struct SystemClock: GraphClock {
    public init() {}
    public func now() -> Double { Date().timeIntervalSince1970 }
}

/// A clock that moves only when a test says so.
public final class ManualClock: GraphClock {
    private let current: Mutex<Double>

    public init(start: Double = 1_000_000) {
        current = Mutex(start)
    }

    public func now() -> Double { current.withLock { $0 } }

    public func advance(by seconds: Double) {
        current.withLock { $0 += seconds }
    }
}
