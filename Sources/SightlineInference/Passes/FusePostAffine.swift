import SightlineCore
import SightlineKernels

/// `fuse-post-affine`: scalar Mul / Add / Sub after an activated convolution runs inside it.
struct FusePostAffinePass: PlanPass {
    let name = "fuse-post-affine"
    let summary = "scalar Mul / Add / Sub after an activated convolution runs inside it."

    func apply(to plan: inout ExecutionPlan) throws {
        plan.fusePostAffine()
    }
}

extension ExecutionPlan {
    /// Scalar Mul / Add / Sub steps after a convolution with an activation become the
    /// convolution's post-activation affine (`ConvStep.postAffine`).
    mutating func fusePostAffine() {
        var i = 0
        while i < steps.count {
            defer { i += 1 }
            guard case .conv(var conv) = steps[i].kind, conv.activation != .none else { continue }
            var absorbed = false
            while let x = steps[i].outputs.first, !outputs.contains(x) {
                let users = consumers(of: x)
                guard users.count == 1, let u = users.first, let node = genericNode(u), steps[u].inputs.count == 2,
                      ["Mul", "Add", "Sub"].contains(node.op), node.attributes["sightline.relu"] == nil,
                      let other = steps[u].inputs.first(where: { $0 != x }), let k = scalarConstant(other),
                      node.op != "Sub" || steps[u].inputs[0] == x, !steps[u].outputs.isEmpty else { break }
                var (scale, shift) = conv.postAffine ?? (1, 0)
                switch node.op {
                case "Mul": scale *= k; shift *= k
                case "Add": shift += k
                default: shift -= k
                }
                conv.postAffine = (scale, shift)
                absorb(u, into: i)
                absorbed = true
            }
            if absorbed {
                steps[i].kind = .conv(conv)
                i = -1  // indices moved
            }
        }
    }
}
