import SightlineCore
import SightlineKernels

/// `fuse-scaled-residual`: x + x·s with s one value per channel (the residual squeeze-and-
/// excitation of PP-OCRv4's detector neck: Mul by the channel weights, then Add of the input)
/// runs as one step, one read of x and one write, instead of writing x·s and reading it back.
struct FuseScaledResidualPass: PlanPass {
    let name = "fuse-scaled-residual"
    let summary = "x + x·s with a per-channel s (residual squeeze-and-excitation) runs as one step."

    func apply(to plan: inout ExecutionPlan) throws {
        plan.fuseScaledResiduals()
    }
}

extension ExecutionPlan {
    mutating func fuseScaledResiduals() {
        var i = 0
        while i < steps.count {
            defer { i += 1 }
            guard var mul = genericNode(i), mul.op == "Mul", mul.attributes.isEmpty, steps[i].inputs.count == 2, steps[i].outputs.count == 1,
                  let product = steps[i].outputs.first, !outputs.contains(product) else { continue }
            let ins = steps[i].inputs
            // x: [N, C, H, W]; s: [N, C, 1, 1].
            guard let x = ins.first(where: { shapes[$0]?.count == 4 && shapes[$0] == shapes[product] }),
                  let s = ins.first(where: { $0 != x }), let xShape = shapes[x], shapes[s] == [xShape[0], xShape[1], 1, 1],
                  let u = soleConsumer(of: product), let add = genericNode(u), add.op == "Add", steps[u].outputs.count == 1,
                  Set(steps[u].inputs) == [x, product], steps[u].inputs.count == 2,
                  add.attributes.keys.allSatisfy({ $0 == "sightline.relu" }) else { continue }
            mul.attributes["sightline.scaled_residual"] = .int(1)
            if let relu = add.attributes["sightline.relu"] { mul.attributes["sightline.relu"] = relu }
            steps[i].kind = .generic(mul)
            steps[i].inputs = [x, s]
            absorb(u, into: i)
        }
    }
}
