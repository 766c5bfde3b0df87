import Foundation
import SightlineCore
import SightlineKernels
import Synchronization

/// A loaded model ready to run: plans are specialised per input shape (batch size and spatial
/// size may vary) and cached. Thread-safe; each call runs on the caller's thread.
public final class InferenceModel: @unchecked Sendable {
    public let graph: IRGraph
    private let plans = Mutex<[[Int]: ExecutionPlan]>([:])

    public init(graph: IRGraph) throws {
        let unsupported = Set(graph.nodes.map(\.op)).subtracting(Operators.supported)
        if let first = unsupported.sorted().first, let node = graph.nodes.first(where: { $0.op == first }) {
            throw ModelError.unsupportedOperator(unsupported.sorted().joined(separator: ", "), node: node.name)
        }
        guard !graph.inputs.isEmpty else { throw ModelError.missing("the model declares no input") }
        guard !graph.outputs.isEmpty else { throw ModelError.missing("the model declares no output") }
        self.graph = graph
    }

    public static func loadONNX(path: String) throws -> InferenceModel {
        try InferenceModel(graph: try OnnxLoader.load(path: path))
    }

    public var inputName: String { graph.inputs[0].name }

    /// Runs the model on one input tensor; returns every declared output by name.
    public func run(_ input: Tensor) throws -> [String: Tensor] {
        let declared = graph.inputs[0].dims
        guard declared.count == input.rank else {
            throw ModelError.shapeMismatch("input '\(inputName)' wants rank \(declared.count), got shape \(input.shape)")
        }
        for (d, (want, got)) in zip(declared, input.shape).enumerated() {
            if let want, want != got { throw ModelError.shapeMismatch("input '\(inputName)' axis \(d) must be \(want), got \(got)") }
        }
        let plan = try self.plan(for: input.shape)
        var values: [String: IRValue] = [inputName: .float(input)]
        var scratch: [Float] = []
        for (index, step) in plan.steps.enumerated() {
            switch step.kind {
            case .conv(let conv):
                guard let x = values[step.inputs[0]] ?? plan.constants[step.inputs[0]] else { throw ModelError.missing(step.inputs[0]) }
                values[step.outputs[0]] = .float(conv.run(x.asFloat, scratch: &scratch))
            case .generic(let node):
                let inputs = step.inputs.map { $0.isEmpty ? nil : (values[$0] ?? plan.constants[$0]) }
                let outputs = try Operators.evaluate(node, inputs, scratch: &scratch)
                for (name, value) in zip(step.outputs, outputs) { values[name] = value }
            }
            for name in plan.releases[index] { values[name] = nil }
        }
        var result: [String: Tensor] = [:]
        for (declaredName, name) in zip(graph.outputs, plan.outputs) {
            guard let value = values[name] ?? plan.constants[name] else { throw ModelError.missing("output '\(declaredName)'") }
            result[declaredName] = value.asFloat
        }
        return result
    }

    func plan(for shape: [Int]) throws -> ExecutionPlan {
        if let cached = plans.withLock({ $0[shape] }) { return cached }
        let built = try ExecutionPlan.build(graph: graph, inputShapes: [inputName: shape])
        plans.withLock { $0[shape] = built }
        return built
    }

    /// Steps per operator after optimisation, for `bench` and tests.
    public func planSummary(for shape: [Int]) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for step in try plan(for: shape).steps { counts[step.op, default: 0] += 1 }
        return counts
    }
}

extension InferenceModel {
    /// The optimised plan, one line per step (`op inputs -> outputs`), for debugging and docs.
    public func planListing(for shape: [Int]) throws -> [String] {
        let plan = try plan(for: shape)
        return plan.steps.map { step in
            let shapes = step.outputs.map { plan.shapes[$0].map { "\($0)" } ?? "?" }
            return "\(step.op) \(step.inputs.map { String($0.suffix(28)) }) -> \(step.outputs.map { String($0.suffix(28)) }) \(shapes)"
        }
    }
}
