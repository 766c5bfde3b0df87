import SightlineKernels

/// `activation-arena` (opt-in): plans the block the pooled steps' outputs live in
/// (`ActivationLayout`), so a run makes one allocation for them instead of one per step. Last,
/// after every pass that adds, removes or fuses steps. Off: every step allocates its output.
///
/// Opt-in because it measured worse than glibc's heap (tuned by `AllocatorTuning`) in every
/// form tried, on batch.yaml over 3 minutes of 720p (AMD EPYC Zen 4, 2 cores), with the same
/// user CPU within noise: a block per model and thread kept between runs, 461 MB peak against
/// 416; one pool of blocks shared by every model, 585–599 MB; a block per run, freed at its
/// end, 463–478 MB against 413–426. A block holds its values' memory for the whole run and
/// only for them, where the heap gives each freed map at once to whatever any thread needs
/// next, and a pipeline runs half a dozen models at once.
struct ActivationArenaPass: PlanPass {
    let name = "activation-arena"
    let summary = "convolution, fused expand → depthwise and packed linear outputs that only such steps read live in one block per run, at offsets planned from liveness."
    let onByDefault = false

    func apply(to plan: inout ExecutionPlan) throws {
        plan.activations = plan.activationLayout(pooling: true)
    }
}

extension ExecutionPlan {
    /// The activation layout of this plan's steps (`pooling: false`: nothing pooled, only the
    /// peak counted).
    func activationLayout(pooling: Bool) -> ActivationLayout {
        let made = Set(steps.flatMap(\.outputs))
        let inputs = Set(steps.flatMap(\.inputs)).filter { !$0.isEmpty && !made.contains($0) && constants[$0] == nil }
        return ActivationLayout.plan(
            steps: steps.map { ActivationLayout.Step(inputs: $0.inputs, outputs: $0.outputs, pooled: pooling && $0.writesIntoGivenBuffer) },
            shapes: shapes, kept: Set(outputs), inputs: inputs)
    }
}
