import SightlineCore
import SightlineKernels

/// `winograd`: 3×3 stride-1 convolutions run as Winograd F(2×2, 3×3), or F(4×4, 3×3) on large
/// planes with the AVX2 kernels (`Winograd.preferredTile`), weights transformed once.
struct WinogradPass: PlanPass {
    let name = "winograd"
    let summary = "3x3 stride-1 convolutions run as Winograd F(2x2, 3x3), or F(4x4, 3x3) on planes of 20x20 or more (AVX2), weights transformed (and packed) once."

    func apply(to plan: inout ExecutionPlan) throws {
        plan.updateConvolutions { conv, shape in conv.prepareWinograd(channels: shape[1], height: shape[2], width: shape[3]) }
    }
}
