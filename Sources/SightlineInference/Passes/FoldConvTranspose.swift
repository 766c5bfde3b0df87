import SightlineCore
import SightlineKernels

/// `fold-conv-transpose`: BatchNormalization and per-channel Add / Sub / Mul after a
/// ConvTranspose fold into its weights and bias, and a Relu or Sigmoid after it runs as it
/// writes its output (the `sightline.activation` attribute). In a DB text-detection head
/// (PP-OCRv4) each of those was a full pass over a 24-channel map of four times the
/// detector's input area.
struct FoldConvTransposePass: PlanPass {
    let name = "fold-conv-transpose"
    let summary = "BatchNormalization and per-channel Add/Sub/Mul after a ConvTranspose fold into its weights; a Relu or Sigmoid after it runs as it writes its output."

    func apply(to plan: inout ExecutionPlan) throws {
        plan.foldConvTranspose()
    }
}

extension ExecutionPlan {
    /// The activations a ConvTranspose step may apply itself.
    static let convTransposeActivations = ["Relu", "Sigmoid"]

    mutating func foldConvTranspose() {
        var i = 0
        while i < steps.count {
            defer { i += 1 }
            guard case .generic(var node) = steps[i].kind, node.op == "ConvTranspose", node.int("group", 1) == 1,
                  steps[i].outputs.count == 1, steps[i].inputs.count >= 2, let w = constants[steps[i].inputs[1]]?.asFloat,
                  w.rank == 4 else { continue }
            let hasBias = steps[i].inputs.count > 2 && !steps[i].inputs[2].isEmpty
            let givenBias = hasBias ? constants[steps[i].inputs[2]]?.asFloat : nil
            if hasBias && givenBias == nil { continue }  // a bias computed at run time
            let outChannels = w.shape[1], taps = w.shape[2] * w.shape[3]
            var weight = w.data, bias = givenBias?.data ?? [Float](repeating: 0, count: outChannels)
            guard bias.count == outChannels else { continue }
            var folded = false
            // Affine steps first (while nothing is activated yet), then one activation.
            while let out = steps[i].outputs.first, !outputs.contains(out), let u = soleConsumer(of: out),
                  case .generic(let next) = steps[u].kind, steps[u].outputs.count == 1,
                  let affine = channelAffine(next, inputs: steps[u].inputs, reading: out, channels: outChannels) {
                // Weight [C_in, M, kh, kw]: output channel m's taps are a run of `taps` per input channel.
                for c in 0..<w.shape[0] {
                    for m in 0..<outChannels where affine.scale[m] != 1 {
                        let base = (c * outChannels + m) * taps
                        for k in 0..<taps { weight[base + k] *= affine.scale[m] }
                    }
                }
                for m in 0..<outChannels { bias[m] = affine.apply(bias[m], channel: m) }
                absorb(u, into: i)
                folded = true
            }
            if folded {
                let name = steps[i].outputs[0]
                constants[name + "#weight"] = .float(Tensor(shape: w.shape, data: weight))
                constants[name + "#bias"] = .float(Tensor(shape: [outChannels], data: bias))
                steps[i].inputs = [steps[i].inputs[0], name + "#weight", name + "#bias"]
            }
            if let out = steps[i].outputs.first, !outputs.contains(out), let u = soleConsumer(of: out),
               case .generic(let next) = steps[u].kind, ExecutionPlan.convTransposeActivations.contains(next.op),
               steps[u].inputs == [out], steps[u].outputs.count == 1 {
                node.attributes["sightline.activation"] = .string(next.op)
                absorb(u, into: i)
            }
            steps[i].kind = .generic(node)
        }
    }
}
