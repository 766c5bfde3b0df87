import SightlineCore
import SightlineKernels

/// `remove-aliases`: Identity, Dropout and same-type Cast steps go; their consumers read the input.
struct RemoveAliasesPass: PlanPass {
    let name = "remove-aliases"
    let summary = "Identity, Dropout and same-type Cast steps go; their consumers read the input."

    func apply(to plan: inout ExecutionPlan) throws {
        plan.removeAliases()
    }
}

extension ExecutionPlan {
    /// Identity, Dropout and same-type Cast do nothing: their consumers read the input.
    mutating func removeAliases() {
        var i = 0
        while i < steps.count {
            let step = steps[i]
            var isAlias = false
            if case .generic(let node) = step.kind, let input = step.inputs.first, !input.isEmpty {
                if node.op == "Identity" || node.op == "Dropout" { isAlias = true }
                if node.op == "Cast", [1, 10, 11].contains(node.int("to", 1)) { isAlias = constants[input] == nil }
            }
            if isAlias, let output = step.outputs.first, let input = step.inputs.first {
                steps.remove(at: i)
                rename(output, to: input)
                if let shape = shapes[input] { shapes[output] = shape }
            } else {
                i += 1
            }
        }
    }
}
