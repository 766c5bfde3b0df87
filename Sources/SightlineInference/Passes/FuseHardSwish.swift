import SightlineCore
import SightlineKernels

/// `fuse-hard-swish`: hard-swish written as Add, Clip, Mul, Div after a convolution runs inside it.
struct FuseHardSwishPass: PlanPass {
    let name = "fuse-hard-swish"
    let summary = "hard-swish written as Add, Clip, Mul, Div after a convolution runs inside it."

    func apply(to plan: inout ExecutionPlan) throws {
        plan.fuseHardSwish()
    }
}

extension ExecutionPlan {
    /// A convolution followed by hard-swish written out as elementwise ops — x · Clip(x + 3,
    /// 0, 6) / 6 (or · 1/6), as exporters for opset < 14 emit it — runs as the convolution with a
    /// fused HardSwish: four full passes over the feature map fewer.
    mutating func fuseHardSwish() {
        var i = 0
        while i < steps.count {
            defer { i += 1 }
            guard case .conv(var conv) = steps[i].kind, conv.activation == .none, let x = steps[i].outputs.first,
                  !outputs.contains(x) else { continue }
            let users = consumers(of: x)
            guard users.count == 2,
                  let a = users.first(where: { genericNode($0)?.op == "Add" }),
                  let m = users.first(where: { genericNode($0)?.op == "Mul" }),
                  steps[a].inputs.contains(where: { $0 != x && scalarConstant($0) == 3 }),
                  let added = steps[a].outputs.first, consumers(of: added).count == 1,
                  let c = consumers(of: added).first, let clip = genericNode(c), clip.op == "Clip",
                  clipBounds(c).map({ $0 == (0, 6) }) == true, let clipped = steps[c].outputs.first, consumers(of: clipped) == [m],
                  steps[m].inputs.count == 2, Set(steps[m].inputs) == [x, clipped],
                  let product = steps[m].outputs.first, !outputs.contains(product), consumers(of: product).count == 1,
                  let d = consumers(of: product).first, let scale = genericNode(d),
                  (scale.op == "Div" && steps[d].inputs.count == 2 && steps[d].inputs[0] == product && scalarConstant(steps[d].inputs[1]) == 6)
                    || (scale.op == "Mul" && steps[d].inputs.contains(product)
                        && steps[d].inputs.contains(where: { $0 != product && scalarConstant($0).map { abs($0 - 1.0 / 6) < 1e-6 } == true })),
                  let result = steps[d].outputs.first
            else { continue }
            conv.activation = .hardSwish
            steps[i].kind = .conv(conv)
            steps[i].outputs = [result]
            shapes[result] = shapes[x]
            for index in [a, c, m, d].sorted(by: >) { steps.remove(at: index) }
            i = -1  // indices moved
        }
    }
}
