import SightlineCore
import SightlineKernels

/// `fuse-attention`: MatMul, scale, Softmax, MatMul becomes one fused attention step.
struct FuseAttentionPass: PlanPass {
    let name = "fuse-attention"
    let summary = "MatMul, scale, Softmax, MatMul becomes one fused attention step."

    func apply(to plan: inout ExecutionPlan) throws {
        plan.fuseAttention()
    }
}

extension ExecutionPlan {
    /// MatMul(Q, Transpose(K)) [× or ÷ scalar] → Softmax(last axis) → MatMul(·, V) becomes one
    /// fused attention step, which never materialises the score matrix.
    mutating func fuseAttention() {
        var i = 0
        while i < steps.count {
            defer { i += 1 }
            guard let softmax = genericNode(i), softmax.op == "Softmax", let sIn = steps[i].inputs.first, let sOut = steps[i].outputs.first,
                  let rank = shapes[sIn]?.count, [rank - 1, -1].contains(softmax.int("axis", -1)) else { continue }
            let users = consumers(of: sOut)
            guard users.count == 1, let m2 = users.first, let second = genericNode(m2), second.op == "MatMul",
                  steps[m2].inputs.first == sOut, steps[m2].inputs.count == 2 else { continue }
            var scale: Float = 1
            var scoresName = sIn
            var scaleStep: Int?
            if let p = producer(of: sIn), let node = genericNode(p), node.op == "Mul" || node.op == "Div",
               consumers(of: sIn) == [i], steps[p].inputs.count == 2, let k = scalarConstant(steps[p].inputs[1]) {
                scale = node.op == "Mul" ? k : 1 / k
                scoresName = steps[p].inputs[0]
                scaleStep = p
            }
            guard let m1 = producer(of: scoresName), let first = genericNode(m1), first.op == "MatMul", consumers(of: scoresName).count == 1,
                  steps[m1].inputs.count == 2, let t = producer(of: steps[m1].inputs[1]), let transpose = genericNode(t),
                  transpose.op == "Transpose", consumers(of: steps[t].outputs[0]).count == 1 else { continue }
            let q = steps[m1].inputs[0], k = steps[t].inputs[0], v = steps[m2].inputs[1]
            guard let qs = shapes[q] ?? constants[q]?.shape, let ks = shapes[k] ?? constants[k]?.shape, let vs = shapes[v] ?? constants[v]?.shape,
                  qs.count >= 2, qs == ks, qs == vs else { continue }
            let r = qs.count
            guard transpose.ints("perm") == Array(0..<(r - 2)) + [r - 1, r - 2] else { continue }
            let output = steps[m2].outputs
            steps[m2] = PlanStep(kind: .attention(scale: scale), inputs: [q, k, v], outputs: output)
            for r in ([i, m1, t] + (scaleStep.map { [$0] } ?? [])).sorted(by: >) { steps.remove(at: r) }
            i = -1
        }
    }
}
