import SightlineCore
import SightlineKernels

/// `winograd`: 3×3 stride-1 convolutions run as Winograd F(2×2, 3×3), weights transformed once.
struct WinogradPass: PlanPass {
    let name = "winograd"
    let summary = "3x3 stride-1 convolutions run as Winograd F(2x2, 3x3), weights transformed (and packed) once."

    func apply(to plan: inout ExecutionPlan) throws {
        plan.updateConvolutions { conv, shape in conv.prepareWinograd(channels: shape[1]) }
    }
}
