import CSightlineKernels
import Dispatch
import Foundation
import Synchronization

/// Fork/join for the kernels' per-layer splits, with helper threads that spin briefly between
/// jobs. `DispatchQueue.concurrentPerform` wakes a worker for every call, and the wake-up
/// (tens of microseconds here) is as long as half a small layer: measured on this 2-core
/// machine, a 2-way split of 2 × 12 µs of work took 31 µs against 23 µs serially. A CNN runs
/// about sixty such splits per image, one after another, so the helpers stay awake across a
/// run and park on a semaphore only after ~0.2 ms without work. Past the first few
/// microseconds they yield the core instead of pausing on it (`IdleWait`): in a pipeline, other
/// nodes' threads are waiting for that core, and a pausing helper kept them off it.
///
/// One job at a time: a caller that finds the pool busy (another model on another thread, or
/// a nested split) falls back to `concurrentPerform`.
public final class KernelPool: @unchecked Sendable {
    public static let shared = KernelPool(helpers: max(0, ProcessInfo.processInfo.activeProcessorCount - 1))

    public let helpers: Int
    private let busy = Atomic<Bool>(false)
    private let generation = Atomic<Int>(0)   // bumped when a job is posted
    private let open = Atomic<Int>(-1)        // generation whose job may still be joined, or -1
    private let next = Atomic<Int>(0)         // next iteration to hand out
    private let active = Atomic<Int>(0)       // helpers inside the current job
    private let sleepers = Atomic<Int>(0)
    private let wake = DispatchSemaphore(value: 0)
    // Valid while `open` holds the job's generation; written before the generation is
    // published and read only by helpers that registered in `active` and saw it open.
    private nonisolated(unsafe) var job: ((Int) -> Void)?
    private nonisolated(unsafe) var count = 0

    init(helpers: Int) {
        self.helpers = helpers
        for index in 0..<helpers {
            let thread = Thread { [unowned self] in self.helperLoop() }
            thread.name = "sightline-kernel-\(index + 1)"
            thread.qualityOfService = .userInitiated
            thread.start()
        }
    }

    /// Runs body(0..<iterations), spread over the calling thread and the helpers; returns when all are done.
    public func run(_ iterations: Int, _ body: @Sendable (Int) -> Void) {
        if iterations <= 1 || helpers == 0 {
            for i in 0..<iterations { body(i) }
            return
        }
        guard busy.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged else {
            DispatchQueue.concurrentPerform(iterations: iterations, execute: body)
            return
        }
        withoutActuallyEscaping(body) { body in
            job = body
            count = iterations
            next.store(0, ordering: .sequentiallyConsistent)
            let g = generation.load(ordering: .sequentiallyConsistent) + 1
            open.store(g, ordering: .sequentiallyConsistent)
            generation.store(g, ordering: .sequentiallyConsistent)
            let parked = sleepers.load(ordering: .sequentiallyConsistent)
            for _ in 0..<min(parked, iterations - 1) { wake.signal() }
            drain(body, iterations)
            // Every iteration is handed out; close the job and wait for helpers still in it.
            open.store(-1, ordering: .sequentiallyConsistent)
            var waited = IdleWait()
            while active.load(ordering: .sequentiallyConsistent) != 0 { waited.pauseOrYield() }
            job = nil
        }
        busy.store(false, ordering: .sequentiallyConsistent)
    }

    private func drain(_ body: (Int) -> Void, _ iterations: Int) {
        while true {
            let i = next.wrappingAdd(1, ordering: .sequentiallyConsistent).oldValue
            if i >= iterations { return }
            body(i)
        }
    }

    private func helperLoop() {
        var seen = generation.load(ordering: .sequentiallyConsistent)
        while true {
            var idle = IdleWait()
            while generation.load(ordering: .sequentiallyConsistent) == seen {
                if idle.pauseOrYield() == .park {
                    sleepers.wrappingAdd(1, ordering: .sequentiallyConsistent)
                    // Re-check after announcing: a job posted before the announcement is seen
                    // here; one posted after it signals the semaphore.
                    if generation.load(ordering: .sequentiallyConsistent) == seen { wake.wait() }
                    sleepers.wrappingSubtract(1, ordering: .sequentiallyConsistent)
                    idle = IdleWait()
                }
            }
            seen = generation.load(ordering: .sequentiallyConsistent)
            active.wrappingAdd(1, ordering: .sequentiallyConsistent)
            if open.load(ordering: .sequentiallyConsistent) == seen, let job {
                drain(job, count)
            }
            active.wrappingSubtract(1, ordering: .sequentiallyConsistent)
        }
    }
}

/// How a thread waits for something another core will do within microseconds: pause
/// instructions first (the answer usually comes within a few microseconds, and pausing sees it
/// at once), then `sched_yield` (the core goes to any other runnable thread, and comes back at
/// once when there is none), and `parkAfter` after the first yield it should sleep. A pure
/// state machine over the number of waits and the time since the first yield; `pauseOrYield`
/// drives it with the clock.
struct IdleWait {
    enum Action: Equatable { case pause, yield, park }

    /// Pause instructions before the first yield: about 10 µs on Zen 3/4 (≈ 10 ns a pause).
    static let pauses = 1_000
    /// Waiting this long (ns) without the awaited event: park (the helpers) or keep yielding (a join).
    static let parkAfter: UInt64 = 200_000

    private(set) var waits = 0
    private var started: UInt64?

    /// What wait number `waits` (from 0) should do, `elapsed` ns after the first yield.
    static func action(waits: Int, elapsed: UInt64) -> Action {
        if waits < pauses { return .pause }
        return elapsed >= parkAfter ? .park : .yield
    }

    /// One wait: pauses or yields, and says `.park` once the caller should sleep (a join just keeps calling).
    @discardableResult
    mutating func pauseOrYield(now: () -> UInt64 = { DispatchTime.now().uptimeNanoseconds }) -> Action {
        waits += 1
        var elapsed: UInt64 = 0
        if waits > Self.pauses {
            // The clock is read only once pausing is over: a short wait costs no clock reads.
            let time = now()
            if let started { elapsed = time &- started } else { started = time }
        }
        let next = Self.action(waits: waits - 1, elapsed: elapsed)
        switch next {
        case .pause: sl_cpu_relax()
        case .yield, .park: sched_yield()
        }
        return next
    }
}
