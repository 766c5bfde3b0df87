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
            return [.float(conv.run(try tensor(0), residual: conv.residual == nil ? nil : try tensor(1), threads: threads))]
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

/// Walks a plan's steps in order, holding the values they make: the one loop every way of
/// running a plan goes through. A dense run takes the plan's steps and drops each intermediate
/// after its last use; a delta run (`runDelta`) takes the unfused steps, keeps every value for
/// the next frame, and through `hook` recomputes only what changed.
struct PlanInterpreter {
    let plan: ExecutionPlan
    let threads: Int
    /// Every value computed so far (constants stay in the plan).
    var values: [String: IRValue]

    init(plan: ExecutionPlan, threads: Int, values: [String: IRValue]) {
        self.plan = plan
        self.threads = threads
        self.values = values
    }

    func value(_ name: String) -> IRValue? { values[name] ?? plan.constants[name] }

    func inputs(of step: PlanStep) throws -> [IRValue?] {
        try step.inputs.map { name in
            guard !name.isEmpty else { return nil }
            guard let value = value(name) else { throw ModelError.missing(name) }
            return value
        }
    }

    /// Runs `step` by its own implementation and keeps its outputs.
    @discardableResult
    mutating func execute(_ step: PlanStep) throws -> [IRValue] {
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
                for name in releases[index] { values[name] = nil }
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
