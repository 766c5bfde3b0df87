import SightlineCore
import SightlineKernels

/// `indirect-im2col`: packed convolutions with kernels larger than 1×1 read a padded copy of
/// each plane through row pointers instead of unfolding im2col columns.
struct IndirectIm2colPass: PlanPass {
    let name = "indirect-im2col"
    let summary = "packed convolutions larger than 1x1 read their input through row pointers instead of im2col."

    func apply(to plan: inout ExecutionPlan) throws {
        plan.updateConvolutions { conv, _ in
            conv.indirect = conv.packedWeights != nil && PackedConv.indirectApplies(conv.geometry)
        }
    }
}
