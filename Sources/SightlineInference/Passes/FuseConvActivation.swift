import SightlineCore
import SightlineKernels

/// `fuse-conv-activation`: a Relu, Clip, Sigmoid, HardSigmoid or HardSwish after a convolution
/// (its only consumer) runs inside the convolution's kernel, while the results are in registers.
struct FuseConvActivationPass: PlanPass {
    let name = "fuse-conv-activation"
    let summary = "Relu/Clip/Sigmoid/HardSigmoid/HardSwish after a convolution runs inside it."

    static let activations: Set<String> = ["Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish"]

    func apply(to plan: inout ExecutionPlan) throws {
        // Consumers come after their producer, so removing one never moves step i.
        var i = -1
        while i + 1 < plan.steps.count {
            i += 1
            guard case .conv(var conv) = plan.steps[i].kind, conv.activation == .none, let output = plan.steps[i].outputs.first,
                  !plan.outputs.contains(output), let u = plan.soleConsumer(of: output), case .generic(let next) = plan.steps[u].kind,
                  Self.activations.contains(next.op), plan.steps[u].outputs.count == 1, plan.steps[u].inputs.first == output,
                  plan.steps[u].inputs.dropFirst().allSatisfy({ $0.isEmpty || plan.constants[$0] != nil }) else { continue }
            conv.activation = try Operators.activation(next, plan.steps[u].inputs.map { $0.isEmpty ? nil : plan.constants[$0] })
            let result = plan.steps[u].outputs[0]
            plan.shapes[result] = plan.shapes[output]
            plan.steps[i] = PlanStep(kind: .conv(conv), inputs: plan.steps[i].inputs, outputs: [result])
            plan.steps.remove(at: u)
        }
    }
}
