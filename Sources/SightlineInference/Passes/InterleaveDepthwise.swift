import SightlineCore
import SightlineKernels

/// `interleave-depthwise`: depthwise convolutions take the eight-lane kernel, their weights
/// interleaved once; off, they stay on the plane kernel.
struct InterleaveDepthwisePass: PlanPass {
    let name = "interleave-depthwise"
    let summary = "depthwise convolutions take the eight-lane kernel, weights interleaved once; off: the plane kernel."

    func apply(to plan: inout ExecutionPlan) throws {
        plan.updateConvolutions { conv, shape in conv.prepareDepthwise(channels: shape[1]) }
    }
}
