import SightlineCore
import SightlineKernels

/// `drop-unread-weights`: each convolution keeps only the copy of its weights its kernel reads.
/// The passes before it fold the weights and then prepare a packed, transposed or Winograd copy
/// for the kernel; the folded originals stayed beside it (open_nsfw: 22.5 MB of 95 MB a plan)
/// though a dense run never reads them. Delta execution does (masked convolutions run on the
/// folded weights, and a fused step runs as its two convolutions), so its plans are built with
/// this pass off (`InferenceModel.runDelta`). Last: it removes what the others may still read.
struct DropUnreadWeightsPass: PlanPass {
    let name = "drop-unread-weights"
    let summary = "a convolution keeps only the weights its kernel reads (the folded originals go where a packed copy replaces them)."

    func apply(to plan: inout ExecutionPlan) throws {
        plan.updateConvolutions { conv, shape in conv.dropUnreadWeights(channels: shape[1]) }
        for i in plan.steps.indices {
            guard case .expandDepthwise(var fused) = plan.steps[i].kind, fused.depthwise.depthwiseInterleaved != nil else { continue }
            // The fused kernel reads the expand panels and the interleaved depthwise weights.
            fused.expand.weight = []
            fused.expand.packedWeights = nil
            fused.expand.packedTransposed = nil
            fused.depthwise.weight = []
            plan.steps[i].kind = .expandDepthwise(fused)
        }
    }
}

extension ConvStep {
    /// Keeps the weights `run` reads for `channels` input channels, and drops the rest.
    mutating func dropUnreadWeights(channels: Int) {
        let reads = kernelWeights(channels: channels)
        guard reads != .folded else { return }
        weight = []
        depthwiseInterleaved = nil
        if reads != .packedTransposed { packedTransposed = nil }
        if reads != .packed { packedWeights = nil }
        if reads != .winograd { winogradWeights = nil; winogradPacked = nil }
    }
}
