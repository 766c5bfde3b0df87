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
                let result = plan.steps[u].outputs[0]
                plan.shapes[result] = plan.shapes[output]
                plan.steps[i].outputs = [result]
                plan.steps.remove(at: u)
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
        let inputs = plan.steps[u].inputs
        if ["Add", "Sub", "Mul"].contains(next.op), inputs.count == 2 {
            let convFirst = inputs[0] == output
            guard let k = plan.constants[convFirst ? inputs[1] : inputs[0]]?.asFloat,
                  let perChannel = ExecutionPlan.perChannel(k, channels: channels) else { return false }
            var bias = conv.bias ?? [Float](repeating: 0, count: channels)
            for c in 0..<channels {
                switch next.op {
                case "Add": bias[c] += perChannel[c]
                case "Sub":
                    if convFirst { bias[c] -= perChannel[c] } else {
                        bias[c] = perChannel[c] - bias[c]
                        for j in 0..<kPerOut { conv.weight[c * kPerOut + j] = -conv.weight[c * kPerOut + j] }
                    }
                default:
                    bias[c] *= perChannel[c]
                    for j in 0..<kPerOut { conv.weight[c * kPerOut + j] *= perChannel[c] }
                }
            }
            conv.bias = bias
            return true
        }
        guard next.op == "BatchNormalization", inputs.count >= 5, inputs[0] == output,
              let scale = plan.constants[inputs[1]]?.asFloat.data, let shift = plan.constants[inputs[2]]?.asFloat.data,
              let mean = plan.constants[inputs[3]]?.asFloat.data, let variance = plan.constants[inputs[4]]?.asFloat.data,
              [scale, shift, mean, variance].allSatisfy({ $0.count == channels }) else { return false }
        let eps = next.float("epsilon", 1e-5)
        var bias = conv.bias ?? [Float](repeating: 0, count: channels)
        for c in 0..<channels {
            let k: Float = scale[c] / (variance[c] + eps).squareRoot()
            for j in 0..<kPerOut { conv.weight[c * kPerOut + j] *= k }
            bias[c] = (bias[c] - mean[c]) * k + shift[c]
        }
        conv.bias = bias
        return true
    }
}
