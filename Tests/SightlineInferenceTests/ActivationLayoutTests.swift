import Testing
@testable import SightlineInference

/// The activation arena's layout as a pure function of a plan's steps: which values it pools,
/// and that no two values alive at the same step share memory.
@Suite struct ActivationLayoutTests {
    typealias Step = ActivationLayout.Step

    @Test func aChainPingPongsBetweenTwoPlaces() {
        // x → v0 → v1 → … → v5 → y, every value read by the next step only.
        var steps: [Step] = []
        var previous = "x"
        for i in 0..<6 {
            steps.append(Step(inputs: [previous], outputs: ["v\(i)"], pooled: true))
            previous = "v\(i)"
        }
        steps.append(Step(inputs: [previous], outputs: ["y"], pooled: true))
        var shapes = ["x": [1, 100], "y": [1, 100]]
        for i in 0..<6 { shapes["v\(i)"] = [1, 100] }
        let layout = ActivationLayout.plan(steps: steps, shapes: shapes, kept: ["y"], inputs: ["x"])
        #expect(layout.placements.count == 6, "y is the plan's output: it leaves the run as an array")
        #expect(layout.placements["y"] == nil)
        // 100 floats rounded up to 112 (a multiple of 16), twice.
        #expect(layout.blockElements == 224)
        #expect(Set(layout.placements.values.map(\.offset)) == [0, 112])
        #expect(layout.peakLiveElements == 200, "the input and v0 at the first step, then two values at a time")
    }

    @Test func onlyValuesThatPooledStepsAloneReadArePooled() {
        let steps = [Step(inputs: ["x"], outputs: ["a"], pooled: true),
                     Step(inputs: ["a"], outputs: ["b"], pooled: true),
                     Step(inputs: ["b"], outputs: ["c"], pooled: false),   // a generic operator reads b
                     Step(inputs: ["a", "c"], outputs: ["d"], pooled: true),
                     Step(inputs: ["d"], outputs: ["unread"], pooled: true),
                     Step(inputs: ["d"], outputs: ["y"], pooled: true)]
        let shapes = ["x": [64], "a": [64], "b": [64], "c": [64], "d": [64], "unread": [64], "y": [64]]
        let layout = ActivationLayout.plan(steps: steps, shapes: shapes, kept: ["y"])
        #expect(Set(layout.placements.keys) == ["a", "d"], "b is read by a generic step, c is made by one, nobody reads 'unread', y is kept")
        // a lives from step 0 to step 3 and d from 3 to 5: they share step 3, so not memory.
        #expect(layout.placements["a"]?.offset != layout.placements["d"]?.offset)
    }

    /// Random plans: a value's memory is never shared with a value alive at any of its steps,
    /// and the block is never larger than all pooled values side by side.
    @Test(arguments: 0..<40)
    func livesThatOverlapNeverShareMemory(seed: Int) {
        var rng = SplitMix(seed: UInt64(seed))
        var steps: [Step] = []
        var shapes: [String: [Int]] = ["x": [1 + rng.next(50)]]
        var made = ["x"]
        let count = 5 + rng.next(40)
        for i in 0..<count {
            let inputs = (0..<(1 + rng.next(2))).map { _ in made[made.count - 1 - rng.next(min(made.count, 6))] }
            let name = "v\(i)"
            steps.append(Step(inputs: inputs, outputs: [name], pooled: rng.next(5) != 0))
            shapes[name] = [[16, 33, 100, 7, 256][rng.next(5)], 1 + rng.next(3)]
            made.append(name)
        }
        let kept: Set<String> = [made.last!]
        let layout = ActivationLayout.plan(steps: steps, shapes: shapes, kept: kept)
        var life: [String: ClosedRange<Int>] = [:]
        for (index, step) in steps.enumerated() {
            for name in step.outputs { life[name] = index...index }
        }
        for (index, step) in steps.enumerated() {
            for name in step.inputs where life[name] != nil { life[name] = life[name]!.lowerBound...max(life[name]!.upperBound, index) }
        }
        let placed = layout.placements.sorted { $0.key < $1.key }
        for (name, place) in placed {
            #expect(place.offset % ActivationLayout.alignment == 0)
            #expect(place.offset + place.count <= layout.blockElements)
            #expect(steps.contains { $0.outputs == [name] && $0.pooled }, "\(name) is made by a pooled step")
            #expect(!steps.contains { !$0.pooled && $0.inputs.contains(name) }, "\(name) is read by no generic step")
            #expect(!kept.contains(name))
        }
        for (i, (a, pa)) in placed.enumerated() {
            for (b, pb) in placed[(i + 1)...] {
                guard let la = life[a], let lb = life[b], la.overlaps(lb) else { continue }
                let disjoint = pa.offset + pa.count <= pb.offset || pb.offset + pb.count <= pa.offset
                #expect(disjoint, "seed \(seed): \(a) \(la) and \(b) \(lb) are alive together and overlap in memory")
            }
        }
        let sideBySide = placed.reduce(0) { $0 + ($1.value.count + 15) / 16 * 16 }
        #expect(layout.blockElements <= sideBySide)
    }

    struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
        mutating func next(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }
    }
}
