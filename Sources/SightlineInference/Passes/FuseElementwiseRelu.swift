import SightlineCore
import SightlineKernels

/// `fuse-elementwise-relu`: Add / Sub / Mul followed by Relu runs as one step.
struct FuseElementwiseReluPass: PlanPass {
    let name = "fuse-elementwise-relu"
    let summary = "Add / Sub / Mul followed by Relu runs as one step."

    func apply(to plan: inout ExecutionPlan) throws {
        plan.fuseElementwiseActivations()
    }
}

extension ExecutionPlan {
    /// An elementwise Add/Sub/Mul/Max/Min followed by Relu (the residual join) runs as one step.
    mutating func fuseElementwiseActivations() {
        var i = 0
        while i < steps.count {
            defer { i += 1 }
            guard case .generic(var node) = steps[i].kind, ["Add", "Sub", "Mul"].contains(node.op),
                  let out = steps[i].outputs.first, !outputs.contains(out) else { continue }
            let users = consumers(of: out)
            guard users.count == 1, let u = users.first, case .generic(let next) = steps[u].kind, next.op == "Relu",
                  !steps[u].outputs.isEmpty else { continue }
            node.attributes["sightline.relu"] = .int(1)
            steps[i].kind = .generic(node)
            absorb(u, into: i)
        }
    }
}
