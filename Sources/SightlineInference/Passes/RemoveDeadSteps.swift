import SightlineCore
import SightlineKernels

/// `remove-dead-steps`: steps whose outputs nobody needs go.
struct RemoveDeadStepsPass: PlanPass {
    let name = "remove-dead-steps"
    let summary = "steps whose outputs nobody needs go."

    func apply(to plan: inout ExecutionPlan) throws {
        plan.removeDeadSteps()
    }
}

extension ExecutionPlan {
    /// Steps whose outputs nobody needs go away.
    mutating func removeDeadSteps() {
        var needed = Set(outputs)
        var kept: [PlanStep] = []
        for step in steps.reversed() where step.outputs.contains(where: needed.contains) {
            kept.append(step)
            for input in step.inputs where !input.isEmpty { needed.insert(input) }
        }
        steps = kept.reversed()
    }
}
