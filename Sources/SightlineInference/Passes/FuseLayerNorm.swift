import SightlineCore
import SightlineKernels

/// `fuse-layer-norm`: a decomposed LayerNorm becomes one step.
struct FuseLayerNormPass: PlanPass {
    let name = "fuse-layer-norm"
    let summary = "a decomposed LayerNorm becomes one step."

    func apply(to plan: inout ExecutionPlan) throws {
        plan.fuseLayerNorm()
    }
}

extension ExecutionPlan {
    /// The decomposed LayerNorm exporters write — ReduceMean, Sub, Pow 2, ReduceMean, Add ε,
    /// Sqrt, Div, then Mul γ and Add β — becomes one LayerNorm step.
    mutating func fuseLayerNorm() {
        var i = 0
        while i < steps.count {
            defer { i += 1 }
            guard let mean = genericNode(i), mean.op == "ReduceMean", let x = steps[i].inputs.first,
                  let meanOut = steps[i].outputs.first, let rank = shapes[x]?.count,
                  let axes = mean.ints("axes"), axes == [-1] || axes == [rank - 1] else { continue }
            func only(_ name: String, _ op: String) -> Int? {
                let users = consumers(of: name)
                guard users.count == 1, let u = users.first, genericNode(u)?.op == op else { return nil }
                return u
            }
            guard let sub = only(meanOut, "Sub"), steps[sub].inputs == [x, meanOut] else { continue }
            let centred = steps[sub].outputs[0]
            let subUsers = consumers(of: centred)
            guard subUsers.count == 2, let pow = subUsers.first(where: { genericNode($0)?.op == "Pow" }),
                  let div = subUsers.first(where: { genericNode($0)?.op == "Div" }), scalarConstant(steps[pow].inputs[1]) == 2,
                  let mean2 = only(steps[pow].outputs[0], "ReduceMean"), let addEps = only(steps[mean2].outputs[0], "Add"),
                  let epsilon = scalarConstant(steps[addEps].inputs[1]), let sqrt = only(steps[addEps].outputs[0], "Sqrt"),
                  steps[div].inputs == [centred, steps[sqrt].outputs[0]],
                  let mul = only(steps[div].outputs[0], "Mul"), let gamma = constants[steps[mul].inputs[1]],
                  let addBeta = only(steps[mul].outputs[0], "Add"), let beta = constants[steps[addBeta].inputs[1]],
                  let width = shapes[x]?.last, gamma.shape.reduce(1, *) == width, beta.shape.reduce(1, *) == width else { continue }
            let output = steps[addBeta].outputs
            steps[addBeta] = PlanStep(kind: .layerNorm(epsilon: epsilon), inputs: [x, steps[mul].inputs[1], steps[addBeta].inputs[1]], outputs: output)
            for r in [i, sub, pow, mean2, addEps, sqrt, div, mul].sorted(by: >) { steps.remove(at: r) }
            i = -1
        }
    }
}
