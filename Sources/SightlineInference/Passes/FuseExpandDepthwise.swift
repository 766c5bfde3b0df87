import SightlineCore
import SightlineKernels

/// `fuse-expand-depthwise`: a 1×1 convolution whose only consumer is a depthwise convolution
/// runs with it as one `ExpandDepthwiseStep` (AVX2 or AVX-512 tiles; needs `interleave-depthwise`).
struct FuseExpandDepthwisePass: PlanPass {
    let name = "fuse-expand-depthwise"
    let summary = "a 1x1 convolution feeding only a depthwise one runs fused with it (AVX2 or AVX-512)."

    func apply(to plan: inout ExecutionPlan) throws {
        plan.fuseExpandDepthwise()
    }
}

extension ExecutionPlan {
    /// Replaces each 1×1 convolution whose only consumer is a depthwise convolution by one
    /// `ExpandDepthwiseStep` (after `interleave-depthwise`, which interleaves the
    /// depthwise weights it needs). The intermediate's shape stays in `shapes` for `unfused`.
    mutating func fuseExpandDepthwise() {
        var uses: [String: Int] = [:]
        for step in steps { for input in step.inputs where !input.isEmpty { uses[input, default: 0] += 1 } }
        for name in outputs { uses[name, default: 0] += 1 }
        var i = 0
        while i + 1 < steps.count {
            defer { i += 1 }
            guard case .conv(let expand) = steps[i].kind, expand.residual == nil, steps[i].inputs.count == 1, steps[i].outputs.count == 1,
                  let x = shapes[steps[i].inputs[0]] else { continue }
            let intermediate = steps[i].outputs[0]
            guard uses[intermediate] == 1, let j = steps.indices.first(where: { $0 > i && steps[$0].inputs.first == intermediate }),
                  case .conv(let depthwise) = steps[j].kind, steps[j].inputs.count == 1,
                  let fused = ExpandDepthwiseStep.make(expand: expand, depthwise: depthwise, intermediate: intermediate, inputShape: x)
            else { continue }
            steps[j] = PlanStep(kind: .expandDepthwise(fused), inputs: [steps[i].inputs[0]], outputs: steps[j].outputs)
            steps.remove(at: i)
            i -= 1
        }
    }
}
