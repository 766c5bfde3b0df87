import SightlineCluster
import Testing

/// Camera leases as timelines of what a worker sees: filling its share, a second worker
/// joining, a worker dying (its leases expire), a removed camera, and the per-worker maximum.
@Suite struct LeasePlannerTests {
    typealias View = LeasePlanner.View

    /// Every worker plans on the same view in turn and its acquisitions land (first come);
    /// returns the leases afterwards.
    func settle(_ cameras: Set<String>, _ leases: [String: String], workers: [String], planner: LeasePlanner, rounds: Int = 6) -> [String: String] {
        var leases = leases
        for _ in 0..<rounds {
            for worker in workers {
                for action in planner.plan(View(cameras: cameras, leases: leases, liveWorkers: Set(workers), me: worker)) {
                    switch action {
                    case .acquire(let camera): if leases[camera] == nil { leases[camera] = worker }
                    case .release(let camera): if leases[camera] == worker { leases[camera] = nil }
                    }
                }
            }
        }
        return leases
    }

    func counts(_ leases: [String: String]) -> [String: Int] { leases.values.reduce(into: [:]) { $0[$1, default: 0] += 1 } }

    @Test func oneWorkerTakesEverythingUpToItsMaximum() {
        let planner = LeasePlanner(maxPerWorker: 3)
        let cameras: Set = ["a", "b", "c", "d", "e"]
        #expect(planner.plan(View(cameras: cameras, leases: [:], liveWorkers: ["w1"], me: "w1")) == [.acquire("a"), .acquire("b"), .acquire("c")])
        let leases = settle(cameras, [:], workers: ["w1"], planner: planner)
        #expect(counts(leases) == ["w1": 3])
    }

    @Test func aJoiningWorkerIsFilledGraduallyAndEveryCameraHasOneHolder() {
        let planner = LeasePlanner(maxPerWorker: 10)
        let cameras: Set = ["a", "b", "c", "d", "e", "f"]
        var leases = settle(cameras, [:], workers: ["w1"], planner: planner)
        #expect(counts(leases) == ["w1": 6])
        // w2 joins: w1 gives one back per round, w2 takes them.
        #expect(planner.plan(View(cameras: cameras, leases: leases, liveWorkers: ["w1", "w2"], me: "w1")) == [.release("f")])
        leases = settle(cameras, leases, workers: ["w1", "w2"], planner: planner)
        #expect(counts(leases) == ["w1": 3, "w2": 3])
        #expect(Set(leases.keys) == cameras)
    }

    @Test func aDeadWorkersCamerasMoveOnceItsLeasesExpire() {
        let planner = LeasePlanner(maxPerWorker: 10)
        let cameras: Set = ["a", "b", "c", "d"]
        var leases = settle(cameras, [:], workers: ["w1", "w2"], planner: planner)
        #expect(counts(leases) == ["w1": 2, "w2": 2])
        // w2 dies: while its leases live nobody takes its cameras…
        #expect(planner.plan(View(cameras: cameras, leases: leases, liveWorkers: ["w1"], me: "w1")).isEmpty)
        let before = leases
        leases = settle(cameras, leases, workers: ["w1"], planner: planner)
        #expect(leases.filter { $0.value == "w2" } == before.filter { $0.value == "w2" })
        // …then they expire and w1 takes them.
        leases = leases.filter { $0.value != "w2" }
        leases = settle(cameras, leases, workers: ["w1"], planner: planner)
        #expect(counts(leases) == ["w1": 4])
    }

    @Test func aRemovedCameraIsReleasedAtOnce() {
        let planner = LeasePlanner(maxPerWorker: 10)
        let leases = ["a": "w1", "b": "w1"]
        #expect(planner.plan(View(cameras: ["a"], leases: leases, liveWorkers: ["w1"], me: "w1")) == [.release("b")])
    }
}
