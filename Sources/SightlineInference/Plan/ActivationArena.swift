import SightlineCore
import Synchronization

/// Where a plan's activations live in one block: each value a convolution, fused
/// expand → depthwise or packed linear step writes, and that only such steps read, gets an
/// offset planned once from the plan's liveness. A run then writes those values into the block
/// the run before it used, instead of allocating an array per step.
///
/// Values other steps read stay arrays (`Tensor` owns its `[Float]`, and the generic operators
/// take tensors), and so do the plan's outputs, which leave the run.
///
/// Offsets are placed greedily by size, largest first, each at the lowest offset where it
/// overlaps no value whose life it shares (TensorFlow Lite's "greedy by size" arena planner):
/// the block comes out close to the most the pooled values hold at once.
struct ActivationLayout: Equatable, Sendable {
    struct Placement: Equatable, Sendable {
        var offset: Int
        var shape: [Int]
        var count: Int { shape.reduce(1, *) }
    }

    /// Pooled values by name.
    var placements: [String: Placement] = [:]
    /// The block's size in elements.
    var blockElements = 0
    /// The most elements the plan's intermediates (pooled or not) hold at once.
    var peakLiveElements = 0

    var isEmpty: Bool { placements.isEmpty }

    /// Offsets are multiples of this many floats (64 bytes: a cache line, an AVX-512 vector).
    static let alignment = 16

    struct Step {
        var inputs: [String]
        var outputs: [String]
        /// Writes its output into a given buffer and reads its inputs through pointers.
        var pooled: Bool
    }

    /// Plans the block for `steps` in order. A value is pooled when a pooled step makes it as
    /// its only output, it is not one of `kept`, and every step that reads it is pooled. It is
    /// live from the step that makes it to the last that reads it, both included (a step's
    /// output never shares memory with its inputs). `shapes` gives every value's shape;
    /// `inputs` (the plan's, alive from the start to their last reader) count for the peak.
    static func plan(steps: [Step], shapes: [String: [Int]], kept: Set<String>, inputs: Set<String> = []) -> ActivationLayout {
        var made: [String: Int] = [:], lastRead: [String: Int] = [:]
        var readByOther = Set<String>()
        for (index, step) in steps.enumerated() {
            for name in step.inputs where !name.isEmpty {
                lastRead[name] = index
                if !step.pooled { readByOther.insert(name) }
            }
            for name in step.outputs where made[name] == nil { made[name] = index }
        }
        func count(_ name: String) -> Int { shapes[name]?.reduce(1, *) ?? 0 }

        // The peak over every intermediate, for comparison (what one block for all would need).
        var layout = ActivationLayout()
        var delta = [Int](repeating: 0, count: steps.count + 1)
        for name in inputs where made[name] == nil { made[name] = 0 }
        for (name, start) in made {
            delta[start] += count(name)
            if let end = lastRead[name], end >= start, !kept.contains(name) { delta[end + 1] -= count(name) }
        }
        var live = 0
        for index in steps.indices {
            live += delta[index]
            layout.peakLiveElements = max(layout.peakLiveElements, live)
        }

        struct Interval { var name: String; var start: Int; var end: Int; var size: Int }
        var intervals: [Interval] = []
        for (index, step) in steps.enumerated() where step.pooled && step.outputs.count == 1 {
            let name = step.outputs[0]
            guard made[name] == index, !inputs.contains(name), !kept.contains(name), !readByOther.contains(name), let end = lastRead[name], end > index,
                  count(name) > 0 else { continue }
            let size = (count(name) + alignment - 1) / alignment * alignment
            intervals.append(Interval(name: name, start: index, end: end, size: size))
        }
        intervals.sort { ($0.size, $1.start) > ($1.size, $0.start) }
        var placed: [(interval: Interval, offset: Int)] = []
        for interval in intervals {
            // The gaps left by the placed values whose lives overlap this one, lowest first.
            let overlapping = placed.filter { $0.interval.start <= interval.end && interval.start <= $0.interval.end }
                .sorted { $0.offset < $1.offset }
            var offset = 0
            for other in overlapping {
                if other.offset - offset >= interval.size { break }
                offset = max(offset, other.offset + other.interval.size)
            }
            placed.append((interval, offset))
            layout.placements[interval.name] = Placement(offset: offset, shape: shapes[interval.name] ?? [])
            layout.blockElements = max(layout.blockElements, offset + interval.size)
        }
        return layout
    }
}

/// A block of memory the pooled values of one run live in, 64-byte aligned; freed with it.
final class ActivationBlock: @unchecked Sendable {
    let base: UnsafeMutablePointer<Float>
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        base = UnsafeMutableRawPointer.allocate(byteCount: self.capacity * MemoryLayout<Float>.stride, alignment: 64)
            .bindMemory(to: Float.self, capacity: self.capacity)
    }

    /// The whole block filled with NaN: tests check that pooled steps write every element.
    func poison() { base.update(repeating: .nan, count: capacity) }

    deinit { base.deallocate() }
}

/// One run's view of its block: where each pooled value of its plan lives.
struct ActivationArena {
    let layout: ActivationLayout
    let block: ActivationBlock

    /// `block` must hold at least `layout.blockElements`.
    init?(layout: ActivationLayout, block: ActivationBlock) {
        guard !layout.isEmpty, block.capacity >= layout.blockElements else { return nil }
        self.layout = layout
        self.block = block
    }

    /// Where `name` lives, with its shape; nil when it is not pooled.
    func placement(of name: String) -> (pointer: UnsafeMutablePointer<Float>, shape: [Int])? {
        guard let place = layout.placements[name] else { return nil }
        return (block.base + place.offset, place.shape)
    }
}
