import Dispatch
import Foundation

/// Decides where node work runs. `DispatchExecutor` gives each node (lane) its own serial
/// queue; the harness runs everything on the calling thread, in a fixed order.
protocol Executor: AnyObject, Sendable {
    var isSynchronous: Bool { get }
    /// The runner has input: make sure it will drain.
    func schedule(_ runner: NodeRunner)
    /// Single-threaded only: a `block` edge is full; process downstream until it has room.
    func makeRoom(in edge: EdgeQueue)
}

final class DispatchExecutor: Executor, @unchecked Sendable {
    let isSynchronous = false

    func schedule(_ runner: NodeRunner) {
        guard runner.markScheduled() else { return }
        runner.queue.async {
            runner.drain()
        }
    }

    func makeRoom(in edge: EdgeQueue) {}
}

/// Deterministic: nothing runs until the harness asks, and then in runner order.
final class SynchronousExecutor: Executor, @unchecked Sendable {
    let isSynchronous = true
    private(set) var pending: [NodeRunner] = []

    func schedule(_ runner: NodeRunner) {
        if !pending.contains(where: { $0 === runner }) { pending.append(runner) }
    }

    func makeRoom(in edge: EdgeQueue) {
        // Run the consumer one item at a time until the edge has room (the consumer may in
        // turn make room further down).
        _ = edge.consumer.processOne()
    }

    /// Runs scheduled runners until no work is left. Returns the number of items processed.
    @discardableResult
    func runUntilIdle() -> Int {
        var processed = 0
        while !pending.isEmpty {
            let runner = pending.removeFirst()
            while runner.processOne() { processed += 1 }
        }
        return processed
    }
}
