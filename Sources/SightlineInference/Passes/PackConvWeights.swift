import SightlineCore
import SightlineKernels

/// `pack-conv-weights`: other ungrouped convolutions run on the packed-weight GEMM kernels
/// (AVX2 / AVX-512), weights packed into panels once; off, they take OpenBLAS.
struct PackConvWeightsPass: PlanPass {
    let name = "pack-conv-weights"
    let summary = "ungrouped convolutions run on the packed-weight GEMM kernels (weights packed once); off: OpenBLAS."

    func apply(to plan: inout ExecutionPlan) throws {
        plan.updateConvolutions { conv, shape in conv.preparePacked(channels: shape[1], height: shape[2], width: shape[3]) }
    }
}
