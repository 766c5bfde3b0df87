import SightlineCore
import SightlineKernels

/// `fuse-residual-add`: a convolution whose only reader is a same-shape Add (the residual join
/// of BlazeFace and BlazePose blocks, optionally with its Relu) computes the join itself, on
/// its output while it is still in cache, instead of a separate step that reads two whole maps
/// and writes a third.
struct FuseResidualAddPass: PlanPass {
    let name = "fuse-residual-add"
    let summary = "a same-shape Add (and its Relu) reading only a convolution's output runs inside that convolution."

    func apply(to plan: inout ExecutionPlan) throws {
        plan.fuseResidualAdds()
    }
}

extension ExecutionPlan {
    mutating func fuseResidualAdds() {
        var i = 0
        while i < steps.count {
            defer { i += 1 }
            guard case .conv(var conv) = steps[i].kind, conv.activation == .none, conv.postAffine == nil, conv.residual == nil,
                  steps[i].inputs.count == 1, steps[i].outputs.count == 1 else { continue }
            let y = steps[i].outputs[0]
            guard !outputs.contains(y), let u = soleConsumer(of: y), let join = genericNode(u), join.op == "Add",
                  steps[u].inputs.count == 2, steps[u].outputs.count == 1,
                  let r = steps[u].inputs.first(where: { $0 != y }), steps[u].inputs.contains(y),
                  constants[r] == nil, let shape = shapes[y], shape.count == 4, shapes[r] == shape else { continue }
            // The other operand must exist when the convolution runs: a plan input, or made
            // by an earlier step.
            if let producer = steps.firstIndex(where: { $0.outputs.contains(r) }), producer >= i { continue }
            let relu = join.int("sightline.relu", 0) == 1
            conv.residual = ConvStep.ResidualJoin(join: join, joinInputs: steps[u].inputs, intermediate: y, activation: relu ? .relu : .none)
            steps[i] = PlanStep(kind: .conv(conv), inputs: [steps[i].inputs[0], r], outputs: steps[u].outputs)
            steps.remove(at: u)
        }
    }
}
