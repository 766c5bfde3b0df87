import Dispatch
import SightlineCore
import SightlineKernels

extension PlanStep {
    /// Runs this step on its input values (nil for an absent optional input). The one
    /// implementation of every step kind: dense runs, delta runs and profiling all come here.
    func run(_ inputs: [IRValue?], threads: Int) throws -> [IRValue] {
        func tensor(_ i: Int) throws -> Tensor {
            guard i < inputs.count, let value = inputs[i] else { throw ModelError.missing("input \(i) of step \(op)") }
            return value.asFloat
        }
        switch kind {
        case .conv(let conv):
            return [.float(try conv.run(try tensor(0), residual: conv.residual == nil ? nil : try tensor(1), threads: threads))]
        case .generic(let node):
            return try Operators.evaluate(node, inputs)
        case .attention(let scale):
            return [.float(Operators.fusedAttention(q: try tensor(0), k: try tensor(1), v: try tensor(2), scale: scale))]
        case .layerNorm(let epsilon):
            return [.float(Operators.fusedLayerNorm(try tensor(0), gamma: try tensor(1), beta: try tensor(2), epsilon: epsilon))]
        case .linear(let linear):
            return [.float(linear.run(try tensor(0), threads: threads))]
        case .expandDepthwise(let fused):
            return [.float(fused.run(try tensor(0), threads: threads))]
        }
    }
}

extension PlanStep {
    /// Whether `run(views:into:threads:)` runs this step: it writes one output into a given
    /// buffer and reads its inputs through pointers (the steps whose outputs can live in the
    /// activation arena).
    var writesIntoGivenBuffer: Bool {
        switch kind {
        case .conv, .linear, .expandDepthwise: outputs.count == 1
        case .generic, .attention, .layerNorm: false
        }
    }

    /// Runs a step that `writesIntoGivenBuffer` on its inputs (`views`: pointer and shape, nil
    /// for an absent optional input), writing every element of `output`.
    func run(views: [(pointer: UnsafePointer<Float>, shape: [Int])?], into output: UnsafeMutablePointer<Float>, threads: Int) throws {
        guard let x = views.first ?? nil else { throw ModelError.missing("input 0 of step \(op)") }
        switch kind {
        case .conv(let conv):
            let r = conv.residual != nil && views.count > 1 ? views[1] : nil
            try conv.checkResidual(elements: r?.shape.reduce(1, *), inputShape: x.shape)
            conv.run(x.pointer, shape: x.shape, residual: r?.pointer, into: output, threads: threads)
        case .linear(let linear):
            linear.run(x.pointer, count: x.shape.reduce(1, *), into: output, threads: threads)
        case .expandDepthwise(let fused):
            fused.run(x.pointer, shape: x.shape, into: output, threads: threads)
        case .generic, .attention, .layerNorm:
            throw ModelError.unsupported("step \(op) does not write into a given buffer")
        }
    }
}

/// Walks a plan's steps in order, holding the values they make: the one loop every way of
/// running a plan goes through. A dense run takes the plan's steps and drops each intermediate
/// after its last use; a delta run (`runDelta`) takes the unfused steps, keeps every value for
/// the next frame, and through `hook` recomputes only what changed.
struct PlanInterpreter {
    let plan: ExecutionPlan
    let threads: Int
    /// Every value computed so far (constants stay in the plan), except those in the arena.
    var values: [String: IRValue]
    /// Where the pooled values live (nil: every value is an array in `values`).
    let arena: ActivationArena?
    /// The pooled values computed and not yet released.
    private var inArena = Set<String>()

    /// With `block`, the plan's pooled values (`plan.activations`) are written into it; only a
    /// dense run in plan order may use it, releasing values by the plan's memory plan. A plan
    /// without pooled values, or a block too small for them, runs without.
    init(plan: ExecutionPlan, threads: Int, values: [String: IRValue], block: ActivationBlock? = nil) {
        self.plan = plan
        self.threads = threads
        self.values = values
        self.arena = block.flatMap { ActivationArena(layout: plan.activations, block: $0) }
    }

    /// A value by name; a pooled one is copied out of the arena (no step reads one this way:
    /// the layout pools only what pooled steps read).
    func value(_ name: String) -> IRValue? {
        if inArena.contains(name), let place = arena?.placement(of: name) {
            return .float(Tensor(shape: place.shape, data: Array(UnsafeBufferPointer(start: place.pointer, count: place.shape.reduce(1, *)))))
        }
        return values[name] ?? plan.constants[name]
    }

    /// Calls `body` with pointers to the inputs of `names` (pooled values where they are in
    /// the arena, arrays held while `body` runs), nil for an empty name.
    private func withViews<R>(_ names: ArraySlice<String>, _ views: [(pointer: UnsafePointer<Float>, shape: [Int])?] = [],
                              _ body: ([(pointer: UnsafePointer<Float>, shape: [Int])?]) throws -> R) throws -> R {
        guard let name = names.first else { return try body(views) }
        if name.isEmpty { return try withViews(names.dropFirst(), views + [nil], body) }
        if inArena.contains(name), let place = arena?.placement(of: name) {
            return try withViews(names.dropFirst(), views + [(UnsafePointer(place.pointer), place.shape)], body)
        }
        guard let value = values[name] ?? plan.constants[name] else { throw ModelError.missing(name) }
        let tensor = value.asFloat
        return try tensor.data.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { throw ModelError.missing("\(name) is empty") }
            return try withViews(names.dropFirst(), views + [(base, tensor.shape)], body)
        }
    }

    func inputs(of step: PlanStep) throws -> [IRValue?] {
        try step.inputs.map { name in
            guard !name.isEmpty else { return nil }
            guard let value = value(name) else { throw ModelError.missing(name) }
            return value
        }
    }

    /// Runs `step` by its own implementation and keeps its outputs. An output written into the
    /// arena is not returned (only dense runs, which ignore the result, have an arena).
    @discardableResult
    mutating func execute(_ step: PlanStep) throws -> [IRValue] {
        if step.writesIntoGivenBuffer, let name = step.outputs.first, let place = arena?.placement(of: name) {
            try withViews(step.inputs[...]) { views in try step.run(views: views, into: place.pointer, threads: threads) }
            inArena.insert(name)
            return []
        }
        let outputs = try step.run(try inputs(of: step), threads: threads)
        for (name, value) in zip(step.outputs, outputs) { values[name] = value }
        return outputs
    }

    /// Every step of `steps` in order. `hook` sees each step first and returns true when it
    /// took care of it (delta execution: an unchanged step kept, a convolution recomputed where
    /// its input changed); otherwise the step runs as it is. With `releases` (the plan's memory
    /// plan for these steps), values are dropped after their last use. `profile` gets each
    /// step's wall time.
    mutating func run(_ steps: [PlanStep], releases: [[String]]? = nil, hook: ((inout PlanInterpreter, PlanStep) throws -> Bool)? = nil,
                      profile: ((PlanStep, Double) -> Void)? = nil) throws {
        for (index, step) in steps.enumerated() {
            let started = profile == nil ? 0 : DispatchTime.now().uptimeNanoseconds
            if try hook?(&self, step) != true { try execute(step) }
            profile?(step, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
            if let releases, index < releases.count {
                for name in releases[index] {
                    values[name] = nil
                    inArena.remove(name)
                }
            }
        }
    }

    /// The graph's declared outputs, by their declared names.
    func outputs(named declared: [String]) throws -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for (declaredName, name) in zip(declared, plan.outputs) {
            guard let value = value(name) else { throw ModelError.missing("output '\(declaredName)'") }
            result[declaredName] = value.asFloat
        }
        return result
    }
}
