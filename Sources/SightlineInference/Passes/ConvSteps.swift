import SightlineCore
import SightlineKernels

/// `conv-steps`: every Conv with constant weights becomes a `ConvStep`, whose weights the later
/// passes fold into and prepare for the kernels. Off, convolutions run through the generic
/// operator (correct, and much slower).
struct ConvStepsPass: PlanPass {
    let name = "conv-steps"
    let summary = "Conv with constant weights becomes a ConvStep the kernels run (folding and packing need it)."

    func apply(to plan: inout ExecutionPlan) throws {
        for i in plan.steps.indices {
            guard case .generic(let node) = plan.steps[i].kind, node.op == "Conv",
                  let x = plan.steps[i].inputs.first, let shape = plan.shapes[x], plan.steps[i].inputs.count >= 2,
                  let weight = plan.constants[plan.steps[i].inputs[1]]?.asFloat else { continue }
            let biasName = plan.steps[i].inputs.count > 2 ? plan.steps[i].inputs[2] : ""
            let bias = biasName.isEmpty ? nil : plan.constants[biasName]?.asFloat
            if !biasName.isEmpty && bias == nil { continue }  // a computed bias stays generic
            var conv = try ConvStep.make(node: node, inputShape: shape, weight: weight, bias: bias, activation: .none)
            // The eight-lane depthwise kernel is the `interleave-depthwise` pass's to choose.
            conv.depthwiseKernel = .planes
            plan.steps[i] = PlanStep(kind: .conv(conv), inputs: [x], outputs: plan.steps[i].outputs)
        }
    }
}
