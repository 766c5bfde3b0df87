import Foundation
import SightlineCore
import SightlineKernels

/// One step of a specialised plan: a fused convolution or any other operator.
struct PlanStep {
    enum Kind {
        case conv(ConvStep)
        case generic(IRNode)
        /// softmax(Q·Kᵀ·scale)·V over the last two axes of [..., L, d] tensors (fused kernel).
        case attention(scale: Float)
        /// LayerNorm over the last axis: inputs x, γ, β.
        case layerNorm(epsilon: Float)
        /// Gemm / MatMul by constant weights on pre-packed panels (input: the activations only).
        case linear(LinearStep)
        /// A 1×1 convolution feeding a depthwise one, computed together (input: the 1×1's).
        case expandDepthwise(ExpandDepthwiseStep)
    }

    var kind: Kind
    var inputs: [String]
    var outputs: [String]
    var op: String {
        switch kind {
        case .conv(let conv): conv.residual == nil ? "Conv" : "Conv+Add(fused)"
        case .generic(let node): node.op
        case .attention: "Attention(fused)"
        case .layerNorm: "LayerNorm(fused)"
        case .linear: "Gemm(packed)"
        case .expandDepthwise: "Conv+DepthwiseConv(fused)"
        }
    }
}

/// A graph specialised for one input shape: shape-only subgraphs folded to constants, then
/// rewritten by the planner passes (Passes/: layout transposes cancelled, BatchNorm/affine chains
/// folded into convolutions, activations fused, dead steps removed, weights prepared for the
/// kernels), and each intermediate released after its last use.
struct ExecutionPlan {
    var steps: [PlanStep]
    var constants: [String: IRValue]
    var outputs: [String]
    /// For each step, the values whose last use it is (their buffers are dropped after it).
    var releases: [[String]]
    var shapes: [String: [Int]]
    /// The most intermediate values held at once while the plan was specialised, in elements
    /// (what building it cost beyond the weights; each value goes after its last reader).
    var specialisationPeakElements = 0
    /// The slots the pooled steps' outputs live in (`activation-arena`; empty when it is off).
    var activations = ActivationLayout()

    static let unaryElementwise: Set<String> = ["Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu", "Neg", "Sqrt", "Exp", "Erf", "Tanh", "Identity", "Dropout"]
    static let binaryElementwise: Set<String> = ["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"]

    /// Specialises `graph` for concrete input shapes by running it once on zeros: nodes whose
    /// inputs are all known (including Shape of anything, since shapes are now fixed) fold into
    /// constants; the rest become steps, with every value's shape recorded (a convolution of a
    /// computed value only gets its shape: `specialisedConvolution`).
    /// Then the passes of `PlanPasses.ordered` rewrite it (those `config` leaves on), and the
    /// memory plan says when each intermediate can go.
    static func build(graph: IRGraph, inputShapes: [String: [Int]], config: KernelConfig = .current) throws -> ExecutionPlan {
        var constants = graph.constants
        var live: [String: IRValue] = [:]
        for input in graph.inputs {
            guard let shape = inputShapes[input.name] else { throw ModelError.missing("input '\(input.name)'") }
            live[input.name] = .float(Tensor(zeros: shape))
        }
        // Each value is dropped after its last reader: only its shape is kept. (Holding every
        // intermediate made building a plan cost the sum of all activations: about 1 GB for
        // the OCR detector at its working size.)
        var lastUse: [String: Int] = [:]
        for (i, node) in graph.nodes.enumerated() { for name in node.inputs where !name.isEmpty { lastUse[name] = i } }
        let kept = Set(graph.outputs)
        var shapes: [String: [Int]] = [:]
        for (name, value) in live { shapes[name] = value.shape }
        var steps: [PlanStep] = []
        var held = live.values.reduce(0) { $0 + $1.shape.reduce(1, *) }, peak = held
        func drop(_ name: String) {
            guard let value = live.removeValue(forKey: name) else { return }
            held -= value.shape.reduce(1, *)
        }
        for (index, node) in graph.nodes.enumerated() {
            let isConstant = node.op == "Shape"
                ? node.inputs.first.map { constants[$0] != nil || live[$0] != nil } ?? false
                : node.inputs.allSatisfy { $0.isEmpty || constants[$0] != nil }
            let values: [IRValue?] = node.inputs.map { $0.isEmpty ? nil : (constants[$0] ?? live[$0]) }
            for (i, name) in node.inputs.enumerated() where !name.isEmpty && values[i] == nil {
                throw ModelError.missing("value '\(name)' used by node '\(node.name)' before it is produced")
            }
            let outputs = try (isConstant ? nil : specialisedConvolution(node, values)) ?? Operators.evaluate(node, values)
            for (name, value) in zip(node.outputs, outputs) {
                if isConstant { constants[name] = value } else {
                    drop(name)
                    live[name] = value
                    shapes[name] = value.shape
                    held += value.shape.reduce(1, *)
                }
            }
            peak = max(peak, held)
            if !isConstant {
                steps.append(PlanStep(kind: .generic(node), inputs: node.inputs, outputs: node.outputs))
            }
            for name in node.inputs where lastUse[name] == index && !kept.contains(name) { drop(name) }
            // An output nobody reads (a node's unused second output) goes at once.
            for name in node.outputs where lastUse[name] == nil && !kept.contains(name) { drop(name) }
        }
        var plan = ExecutionPlan(steps: steps, constants: constants, outputs: graph.outputs, releases: [], shapes: shapes)
        plan.specialisationPeakElements = peak
        try PlanPasses.run(on: &plan, config: config)
        plan.computeReleases()
        plan.keepOnlyReadConstants()
        return plan
    }

    /// A convolution of a value the graph computes, while specialising: only its shape matters
    /// (the plan's steps compute the values), so it is zeros of the shape the convolution gives,
    /// checked as evaluating it would check it. Evaluating it ran every convolution of the model
    /// once more on the generic path for each new input shape: 6 % of batch.yaml's CPU on a
    /// 30 s clip, in the text recogniser's plans for new line widths and each model's first.
    /// nil for other nodes.
    static func specialisedConvolution(_ node: IRNode, _ values: [IRValue?]) throws -> [IRValue]? {
        guard node.op == "Conv", values.count >= 2, let x = values[0], let w = values[1] else { return nil }
        let input = x.asFloat
        let step = try ConvStep.make(node: node, inputShape: input.shape, weight: w.asFloat, bias: values.count > 2 ? values[2]?.asFloat : nil,
                                     activation: .none)
        let (oh, ow) = step.geometry.outputSize(height: input.shape[2], width: input.shape[3])
        let shape = [input.shape[0], step.outChannels, oh, ow]  // `geometry` has checked both are positive
        try Operators.checkShape(shape, node)
        return [.float(Tensor(zeros: shape))]
    }

    /// Drops the constants no step reads (the graph's weights that the passes folded and packed
    /// into the steps), so a plan holds one copy of each weight.
    mutating func keepOnlyReadConstants() {
        var read = Set(outputs)
        for step in steps {
            for input in step.inputs { read.insert(input) }
            for part in step.unfused { for input in part.inputs { read.insert(input) } }
        }
        constants = constants.filter { read.contains($0.key) }
    }

    /// The memory plan: after step i, drop the values it used last (outputs stay).
    mutating func computeReleases() {
        var lastUse: [String: Int] = [:]
        for (i, step) in steps.enumerated() {
            for input in step.inputs where !input.isEmpty && constants[input] == nil { lastUse[input] = i }
        }
        releases = [[String]](repeating: [], count: steps.count)
        for (name, index) in lastUse where !outputs.contains(name) { releases[index].append(name) }
    }
}

extension ExecutionPlan {
    /// Floats held for weights, by form: the folded originals, each kernel's prepared copies,
    /// and the constants the generic steps read.
    func weightElements() -> [(form: String, elements: Int)] {
        var totals: [String: Int] = [:]
        func add(_ conv: ConvStep) {
            totals["conv weights (folded)", default: 0] += conv.weight.count + (conv.bias?.count ?? 0)
            for form in ConvStep.preparedForms { totals[form.name, default: 0] += conv[keyPath: form.path]?.count ?? 0 }
        }
        var readConstants = Set<String>()
        for step in steps {
            switch step.kind {
            case .conv(let conv): add(conv)
            case .expandDepthwise(let fused):
                add(fused.expand)
                add(fused.depthwise)
                totals["expand panels", default: 0] += fused.expandPanels.count
            default: break
            }
            for input in step.inputs where constants[input] != nil { readConstants.insert(input) }
        }
        totals["constants read by steps"] = readConstants.reduce(0) { $0 + (constants[$1]?.shape.reduce(1, *) ?? 0) }
        totals["constants held"] = constants.values.reduce(0) { $0 + $1.shape.reduce(1, *) }
        return totals.filter { $0.value > 0 }.sorted { $0.value > $1.value }.map { ($0.key, $0.value) }
    }
}
