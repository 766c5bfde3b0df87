import Foundation
import SightlineCore
import SightlineKernels
import Synchronization

/// A loaded model ready to run: plans are specialised per input shape (batch size and spatial
/// size may vary) and cached. Thread-safe; each call runs on the caller's thread.
public final class InferenceModel: @unchecked Sendable {
    /// The graph. With `reload`, its weights go once a plan is built (the plans hold what their
    /// steps read, packed for the kernels) and come back from `reload` for the next shape.
    public var graph: IRGraph { stored.withLock { $0 } }
    private let stored: Mutex<IRGraph>
    /// Reads the graph again from its file: set for models whose input shape rarely changes,
    /// so their weights are not held twice (the graph's and the plan's packed copy).
    private let reload: (@Sendable () throws -> IRGraph)?
    private let plans = Mutex(PlanCache())
    /// Cores one inference may use (Dispatch splits convolutions; OpenBLAS stays at one thread).
    public let threads: Int

    /// A single-threaded twin that shares the other model's plan cache.
    private init(graph: IRGraph, threads: Int, sharing other: InferenceModel) throws {
        self.threads = threads
        self.stored = Mutex(graph)
        self.reload = nil
        self.sharedPlans = other
    }

    private var sharedPlans: InferenceModel?

    /// `reload`, when given, reads the same graph again (see `graph`): pass it for models with
    /// one or a few input shapes, not for those that plan many (OCR recognition's line widths).
    public init(graph: IRGraph, threads: Int = 1, reload: (@Sendable () throws -> IRGraph)? = nil) throws {
        KernelThreads.claimCores()
        self.threads = max(1, threads)
        let unsupported = Set(graph.nodes.map(\.op)).subtracting(Operators.supported)
        if let first = unsupported.sorted().first, let node = graph.nodes.first(where: { $0.op == first }) {
            throw ModelError.unsupportedOperator(unsupported.sorted().joined(separator: ", "), node: node.name)
        }
        guard !graph.inputs.isEmpty else { throw ModelError.missing("the model declares no input") }
        guard !graph.outputs.isEmpty else { throw ModelError.missing("the model declares no output") }
        self.stored = Mutex(graph)
        self.reload = reload
    }

    /// An ONNX model; with `reloadable`, its weights are read again from `path` when a new
    /// input shape is planned instead of being held beside the plans.
    public static func loadONNX(path: String, threads: Int = 1, reloadable: Bool = false) throws -> InferenceModel {
        let again: (@Sendable () throws -> IRGraph)? = reloadable ? { @Sendable in try OnnxLoader.load(path: path) } : nil
        return try InferenceModel(graph: try OnnxLoader.load(path: path), threads: threads, reload: again)
    }

    /// Whether the graph's weights are held now (false after a reloadable model planned).
    public var holdsGraphWeights: Bool { stored.withLock { !$0.constants.isEmpty } }

    public var inputName: String { graph.inputs[0].name }

    /// Runs the model on one input tensor; returns every declared output by name.
    public func run(_ input: Tensor) throws -> [String: Tensor] {
        let batch = input.shape.first ?? 1
        if threads > 1 && batch >= threads {
            return try runSplittingBatch(input)
        }
        if batch > 1 && (input.rank == 4 || batch & (batch - 1) != 0) {
            return try runInParts(input, imageByImage: input.rank == 4)
        }
        return try run(input, profile: Optional<(String, Double) -> Void>.none)
    }

    /// Runs one input with the values of some steps given instead of computed (`given`, by
    /// the step's output name), and returns, besides the declared outputs, the values named in
    /// `keeping` as this run computed them. Text detection uses it to run a window of a frame
    /// with the whole frame's global pools (squeeze-and-excitation), so the window's
    /// probabilities are the whole frame's.
    public func run(_ input: Tensor, given: [String: Tensor], keeping: Set<String>) throws -> (outputs: [String: Tensor], kept: [String: Tensor]) {
        let plan = try self.plan(for: input.shape)
        var interpreter = PlanInterpreter(plan: plan, threads: threads, values: [inputName: .float(input)])
        var kept: [String: Tensor] = [:]
        try interpreter.run(plan.steps, releases: plan.releases, hook: { interpreter, step in
            if !step.outputs.isEmpty, step.outputs.allSatisfy({ given[$0] != nil }) {
                for name in step.outputs { interpreter.values[name] = given[name].map { .float($0) } }
            } else {
                try interpreter.execute(step)
            }
            for name in step.outputs where keeping.contains(name) { kept[name] = interpreter.values[name]?.asFloat }
            return true
        })
        return (try interpreter.outputs(named: graph.outputs), kept)
    }

    /// The names of the values the steps running `op` produce, in the plan for `shape`.
    public func outputs(ofOperator op: String, shape: [Int]) throws -> [String] {
        try plan(for: shape).steps.filter { $0.op == op }.flatMap(\.outputs)
    }

    /// Batches run in parts. Images (rank-4 inputs) one at a time: measured on this CPU, a
    /// CNN's batch of 8 costs more per image than 8 single runs (open_nsfw 34.5 vs 28.5 ms per
    /// image — eight images' activations leave the caches), and only one plan is needed.
    /// Other inputs (token sequences, whose GEMMs gain from more rows) in power-of-two parts
    /// (7 = 4+2+1), so dynamic batching builds at most log2(max batch) + 1 plans per shape.
    private func runInParts(_ input: Tensor, imageByImage: Bool) throws -> [String: Tensor] {
        let batch = input.shape[0]
        var ranges: [Range<Int>] = []
        var start = 0
        while start < batch {
            var size = 1
            while !imageByImage && size * 2 <= batch - start { size *= 2 }
            ranges.append(start..<(start + size))
            start += size
        }
        let parts = try ranges.map { try run(Self.slice(input, $0), profile: Optional<(String, Double) -> Void>.none) }
        return try Self.concatenate(parts, ranges: ranges) ?? run(input, profile: Optional<(String, Double) -> Void>.none)
    }

    /// Batches of at least `threads` items: each core runs a share of the batch on its own
    /// (no synchronisation inside the network), and the outputs are concatenated.
    private func runSplittingBatch(_ input: Tensor) throws -> [String: Tensor] {
        let batch = input.shape[0]
        let chunks = (0..<threads).map { t -> Range<Int> in (t * batch / threads)..<((t + 1) * batch / threads) }.filter { !$0.isEmpty }
        let results = Mutex<[Int: Result<[String: Tensor], Error>]>([:])
        let single = try InferenceModel(graph: graph, threads: 1, sharing: self)
        DispatchQueue.concurrentPerform(iterations: chunks.count) { i in
            let outcome = Result { try single.run(Self.slice(input, chunks[i])) }
            results.withLock { $0[i] = outcome }
        }
        let parts = try chunks.indices.map { i in
            guard let outcome = results.withLock({ $0[i] }) else { throw ModelError.missing("batch part \(i)") }
            return try outcome.get()
        }
        return try Self.concatenate(parts, ranges: chunks) ?? run(input, profile: Optional<(String, Double) -> Void>.none)
    }

    /// Items `range` of a batch.
    static func slice(_ input: Tensor, _ range: Range<Int>) -> Tensor {
        let per = input.count / max(input.shape[0], 1)
        return Tensor(shape: [range.count] + input.shape.dropFirst(), data: Array(input.data[(range.lowerBound * per)..<(range.upperBound * per)]))
    }

    /// The parts' outputs joined along the batch axis; nil when an output is not batched
    /// (its first axis is not the part's size), so the caller runs the whole batch at once.
    static func concatenate(_ parts: [[String: Tensor]], ranges: [Range<Int>]) -> [String: Tensor]? {
        var merged: [String: Tensor] = [:]
        for (outputs, range) in zip(parts, ranges) {
            for (name, tensor) in outputs {
                guard tensor.shape.first == range.count else { return nil }
                if var existing = merged[name] {
                    existing.shape[0] += range.count
                    existing.data += tensor.data
                    merged[name] = existing
                } else {
                    merged[name] = tensor
                }
            }
        }
        return merged
    }

    /// Milliseconds spent per operator type over one run (the step profile `bench infer --profile` prints).
    public func profile(_ input: Tensor) throws -> [(op: String, milliseconds: Double, steps: Int)] {
        var totals: [String: (Double, Int)] = [:]
        _ = try run(input) { op, seconds in
            totals[op, default: (0, 0)].0 += seconds * 1000
            totals[op, default: (0, 0)].1 += 1
        }
        return totals.map { ($0.key, $0.value.0, $0.value.1) }.sorted { $0.milliseconds > $1.milliseconds }
    }

    /// Median milliseconds of every step in plan order over `runs` runs, with the step's
    /// profile key and input shape (`bench infer --profile-steps`: lines up with onnxruntime's
    /// per-node profile).
    public func stepProfile(_ input: Tensor, runs: Int) throws -> [(step: String, inputShape: [Int], milliseconds: Double)] {
        let plan = try self.plan(for: input.shape)
        var samples = [[Double]](repeating: [], count: plan.steps.count)
        for _ in 0..<max(runs, 1) {
            var index = 0
            _ = try run(input) { _, seconds in
                samples[index].append(seconds * 1000)
                index += 1
            }
        }
        return plan.steps.enumerated().map { index, step in
            let sorted = samples[index].sorted()
            let shape = step.inputs.first.flatMap { plan.shapes[$0] } ?? []
            let key = Self.profileKey(step, plan) + (step.unfused.last?.conv.map { " →\($0.outChannels)" } ?? "")
            return (key, shape, sorted.isEmpty ? 0 : sorted[sorted.count / 2])
        }
    }

    private func run(_ input: Tensor, profile: ((String, Double) -> Void)?) throws -> [String: Tensor] {
        let declared = graph.inputs[0].dims
        guard declared.count == input.rank else {
            throw ModelError.shapeMismatch("input '\(inputName)' wants rank \(declared.count), got shape \(input.shape)")
        }
        for (d, (want, got)) in zip(declared, input.shape).enumerated() {
            if let want, want != got { throw ModelError.shapeMismatch("input '\(inputName)' axis \(d) must be \(want), got \(got)") }
        }
        let plan = try self.plan(for: input.shape)
        // The pooled activations go into one block for the run (`activation-arena`, opt-in).
        let block = plan.activations.isEmpty ? nil : ActivationBlock(capacity: plan.activations.blockElements)
        var interpreter = PlanInterpreter(plan: plan, threads: threads, values: [inputName: .float(input)], block: block)
        try interpreter.run(plan.steps, releases: plan.releases, profile: profile.map { report in
            { step, seconds in report(Self.profileKey(step, plan), seconds) }
        })
        return try interpreter.outputs(named: graph.outputs)
    }

    /// Convolutions are profiled by kernel size and stride, everything else by operator.
    static func profileKey(_ step: PlanStep, _ plan: ExecutionPlan) -> String {
        if case .expandDepthwise(let fused) = step.kind {
            let g = fused.depthwise.geometry
            return "Conv 1x1+dw \(g.kernelH)x\(g.kernelW)/\(g.strideH)"
        }
        guard case .conv(let conv) = step.kind else { return step.op }
        let g = conv.geometry
        return "Conv \(g.kernelH)x\(g.kernelW)/\(g.strideH)\(conv.groups > 1 ? " g\(conv.groups)" : "")\(conv.residual == nil ? "" : "+add")"
    }

    /// Plans kept per model. Input shapes can vary without end (an OCR line's width), so the
    /// least recently used plans are dropped; their weights are shared (`WeightBank`).
    public static let planCacheLimit = 16

    /// The plan for inputs of `shape`. Delta execution asks for one that keeps the folded
    /// weights (`forDelta`), which a dense run never reads (`drop-unread-weights`).
    func plan(for shape: [Int], forDelta: Bool = false) throws -> ExecutionPlan {
        if let sharedPlans { return try sharedPlans.plan(for: shape, forDelta: forDelta) }
        let key = PlanCache.Key(shape: shape, forDelta: forDelta)
        if let cached = plans.withLock({ $0.plan(for: key) }) { return cached }
        var config = KernelConfig.current
        if forDelta { config.disabledPasses.insert(DropUnreadWeightsPass().name) }
        var source = graph
        if let reload, source.constants.isEmpty && !source.nodes.isEmpty { source = try reload() }
        let built = try ExecutionPlan.build(graph: source, inputShapes: [inputName: shape], config: config)
        if reload != nil {
            // The plan keeps the constants its steps read; the graph's copy of the rest goes.
            source.constants = [:]
            stored.withLock { $0 = source }
        }
        // The cached plan is returned (its weights shared with the model's other plans), so
        // this built copy's own arrays go now.
        return plans.withLock { cache in
            cache.insert(built, for: key, limit: Self.planCacheLimit)
            return cache.plans[key] ?? built
        }
    }

    /// Number of cached plans (tests).
    public var cachedPlanCount: Int { (sharedPlans ?? self).plans.withLock { $0.plans.count } }

    /// Steps per operator after optimisation, for `bench` and tests.
    public func planSummary(for shape: [Int]) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for step in try plan(for: shape).steps { counts[step.op, default: 0] += 1 }
        return counts
    }
}

extension InferenceModel {
    /// Floats a plan holds for its weights, by form (`sightline models plan`): what a model
    /// costs in memory beyond its activations.
    public func planWeightElements(for shape: [Int]) throws -> [(form: String, elements: Int)] {
        try plan(for: shape).weightElements()
    }

    /// A plan's activations in elements: the most its intermediates hold at once, and the
    /// activation arena's block (`activation-arena`, opt-in: what it would be when the plan was
    /// built without it), with how many values live there out of all.
    public func planActivationElements(for shape: [Int]) throws -> (peakLive: Int, arena: Int, pooled: Int, values: Int, arenaOn: Bool) {
        let plan = try plan(for: shape)
        let peak = plan.activationLayout(pooling: false).peakLiveElements
        let layout = plan.activations.isEmpty ? plan.activationLayout(pooling: true) : plan.activations
        return (peak, layout.blockElements, layout.placements.count, plan.steps.reduce(0) { $0 + $1.outputs.count }, !plan.activations.isEmpty)
    }

    /// The optimised plan, one line per step (`op inputs -> outputs`), for debugging and docs.
    public func planListing(for shape: [Int]) throws -> [String] {
        let plan = try plan(for: shape)
        return plan.steps.map { step in
            let shapes = step.outputs.map { plan.shapes[$0].map { "\($0)" } ?? "?" }
            return "\(step.op) \(step.inputs.map { String($0.suffix(28)) }) -> \(step.outputs.map { String($0.suffix(28)) }) \(shapes)"
        }
    }
}

/// Plans by input shape (and whether delta execution runs them), least recently used first out.
struct PlanCache {
    struct Key: Hashable {
        var shape: [Int]
        var forDelta: Bool
    }

    var plans: [Key: ExecutionPlan] = [:]
    private var use: [Key] = []
    /// Weights shared between the plans (and kept when a plan is dropped).
    private var bank = WeightBank()

    mutating func plan(for key: Key) -> ExecutionPlan? {
        guard let plan = plans[key] else { return nil }
        touch(key)
        return plan
    }

    mutating func insert(_ plan: ExecutionPlan, for key: Key, limit: Int) {
        var plan = plan
        bank.share(&plan)
        plans[key] = plan
        touch(key)
        while use.count > limit { plans[use.removeFirst()] = nil }
    }

    private mutating func touch(_ key: Key) {
        use.removeAll { $0 == key }
        use.append(key)
    }
}
