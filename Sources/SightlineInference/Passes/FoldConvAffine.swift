import SightlineCore
import SightlineKernels

/// `fold-conv-affine`: per-channel Add / Sub / Mul constants and BatchNormalization after a
/// convolution fold into its weights and bias (while it is their only input and nothing is
/// activated yet).
struct FoldConvAffinePass: PlanPass {
    let name = "fold-conv-affine"
    let summary = "per-channel Add/Sub/Mul and BatchNormalization after a convolution fold into its weights."

    func apply(to plan: inout ExecutionPlan) throws {
        // Consumers come after their producer, so removing one never moves step i.
        var i = -1
        while i + 1 < plan.steps.count {
            i += 1
            guard case .conv(var conv) = plan.steps[i].kind, conv.activation == .none else { continue }
            var absorbed = false
            while let output = plan.steps[i].outputs.first, !plan.outputs.contains(output), let u = plan.soleConsumer(of: output),
                  case .generic(let next) = plan.steps[u].kind, plan.steps[u].outputs.count == 1,
                  fold(next, at: u, output: output, into: &conv, plan: plan) {
                plan.absorb(u, into: i)
                absorbed = true
            }
            if absorbed { plan.steps[i].kind = .conv(conv) }
        }
    }

    /// Folds step `u` (`next`, reading the convolution's `output`) into `conv`; false when it is
    /// not a per-channel affine or BatchNormalization with constant parameters.
    private func fold(_ next: IRNode, at u: Int, output: String, into conv: inout ConvStep, plan: ExecutionPlan) -> Bool {
        let channels = conv.outChannels
        let kPerOut = conv.weight.count / max(channels, 1)
        guard let affine = plan.channelAffine(next, inputs: plan.steps[u].inputs, reading: output, channels: channels) else { return false }
        var bias = conv.bias ?? [Float](repeating: 0, count: channels)
        for c in 0..<channels {
            if affine.scale[c] != 1 {
                for j in 0..<kPerOut { conv.weight[c * kPerOut + j] *= affine.scale[c] }
            }
            bias[c] = affine.apply(bias[c], channel: c)
        }
        conv.bias = bias
        return true
    }
}
