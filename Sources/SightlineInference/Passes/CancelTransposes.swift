import SightlineCore
import SightlineKernels

/// `cancel-transposes`: layout Transposes move through elementwise steps until they meet and cancel.
struct CancelTransposesPass: PlanPass {
    let name = "cancel-transposes"
    let summary = "layout Transposes move through elementwise steps until they meet and cancel."

    func apply(to plan: inout ExecutionPlan) throws {
        plan.cancelTransposes()
    }
}

extension ExecutionPlan {
    /// Graphs converted from NHWC frameworks wrap every convolution in Transposes. Move each
    /// Transpose down through elementwise steps (permuting their constant operands) until it
    /// meets another Transpose: composed, they usually cancel.
    mutating func cancelTransposes() {
        var changed = true
        var fresh = 0
        while changed {
            changed = false
            for t in steps.indices {
                guard case .generic(let tNode) = steps[t].kind, tNode.op == "Transpose",
                      let x = steps[t].inputs.first, let y = steps[t].outputs.first, !outputs.contains(y),
                      let xShape = shapes[x] else { continue }
                let perm = tNode.ints("perm") ?? Array((0..<xShape.count).reversed())
                let users = consumers(of: y)
                guard !users.isEmpty else { continue }

                // Several consumers: give each its own copy, so each can cancel on its own.
                let allTransposes = users.allSatisfy { i in
                    if case .generic(let n) = steps[i].kind { return n.op == "Transpose" }
                    return false
                }
                if users.count > 1 && !allTransposes {
                    var copies: [PlanStep] = []
                    for u in users.dropFirst() {
                        fresh += 1
                        let copyName = "\(y)#copy\(fresh)"
                        var copy = steps[t]
                        copy.outputs = [copyName]
                        shapes[copyName] = shapes[y]
                        steps[u].inputs = steps[u].inputs.map { $0 == y ? copyName : $0 }
                        copies.append(copy)
                    }
                    steps.insert(contentsOf: copies, at: t + 1)
                    changed = true
                    break
                }

                // Every consumer is a Transpose: compose each with this one.
                if users.allSatisfy({ if case .generic(let n) = steps[$0].kind { n.op == "Transpose" } else { false } }) {
                    var removals: [Int] = []
                    for u in users {
                        guard case .generic(var uNode) = steps[u].kind else { continue }
                        let q = uNode.ints("perm") ?? Array((0..<perm.count).reversed())
                        let composed = q.map { perm[$0] }
                        if composed == Array(0..<composed.count), let out = steps[u].outputs.first {
                            removals.append(u)
                            rename(out, to: x)
                        } else {
                            uNode.attributes["perm"] = .ints(composed.map { Int64($0) })
                            steps[u].kind = .generic(uNode)
                            steps[u].inputs = [x]
                        }
                    }
                    for r in (removals + [t]).sorted(by: >) { steps.remove(at: r) }
                    changed = true
                    break
                }
                guard users.count == 1, let c = users.first, case .generic(var cNode) = steps[c].kind,
                      let cOut = steps[c].outputs.first, steps[c].outputs.count == 1 else { continue }
                let inverse = (0..<perm.count).map { perm.firstIndex(of: $0) ?? $0 }

                if cNode.op == "ReduceMean", cNode.int("keepdims", 1) == 0, let axes = cNode.ints("axes"), steps[c].inputs.count == 1 {
                    // ReduceMean_axes(T_p(x)) = ReduceMean_{p[axes]}(x) when the kept axes stay in order.
                    let rank = perm.count
                    let normalized = axes.map { $0 < 0 ? $0 + rank : $0 }
                    let sourceAxes = normalized.map { perm[$0] }
                    let keptOut = (0..<rank).filter { !normalized.contains($0) }.map { perm[$0] }
                    if keptOut == keptOut.sorted() {
                        cNode.attributes["axes"] = .ints(sourceAxes.sorted().map { Int64($0) })
                        steps[c].kind = .generic(cNode)
                        steps[c].inputs = [x]
                        if consumers(of: y).isEmpty { steps.remove(at: t) }
                        changed = true
                        break
                    }
                }
                if cNode.op == "Pad", steps[c].inputs.first == y, let pads = cNode.ints("pads") ?? constantInts(steps[c].inputs.dropFirst().first),
                   pads.count == 2 * perm.count, steps[c].inputs.dropFirst(2).allSatisfy({ $0.isEmpty || constants[$0] != nil }) {
                    // Pad_P(T_p(x)) = T_p(Pad_P'(x)): output axis i is input axis p[i], so its pads move there.
                    let rank = perm.count
                    var moved = [Int](repeating: 0, count: 2 * rank)
                    for i in 0..<rank {
                        moved[perm[i]] = pads[i]
                        moved[rank + perm[i]] = pads[rank + i]
                    }
                    fresh += 1
                    let tmp = "\(cOut)#nchw\(fresh)"
                    cNode.attributes["pads"] = .ints(moved.map { Int64($0) })
                    steps[c].kind = .generic(cNode)
                    steps[c].inputs = [x, ""] + steps[c].inputs.dropFirst(2)
                    if steps[c].inputs.count == 2 { steps[c].inputs = [x] }
                    steps[c].outputs = [tmp]
                    shapes[tmp] = (0..<rank).map { xShape[$0] + moved[$0] + moved[rank + $0] }
                    var after = steps[t]
                    after.inputs = [tmp]
                    after.outputs = [cOut]
                    steps.remove(at: t)
                    steps.insert(after, at: c)
                    changed = true
                    break
                }
                if Self.unaryElementwise.contains(cNode.op) && steps[c].inputs.first == y
                    && steps[c].inputs.dropFirst().allSatisfy({ $0.isEmpty || constants[$0] != nil }) {
                    // op(T(x)) = T(op(x))
                    fresh += 1
                    let tmp = "\(cOut)#nchw\(fresh)"
                    steps[c].inputs[0] = x
                    steps[c].outputs = [tmp]
                    shapes[tmp] = xShape
                    var moved = steps[t]
                    moved.inputs = [tmp]
                    moved.outputs = [cOut]
                    steps.remove(at: t)
                    steps.insert(moved, at: c)  // c shifted down by one: insert right after it
                    changed = true
                    break
                }
                if Self.binaryElementwise.contains(cNode.op), steps[c].inputs.count == 2 {
                    let inputs = steps[c].inputs
                    let side = inputs[0] == y ? 0 : 1
                    let other = inputs[1 - side]
                    if let k = constants[other], k.shape.count <= perm.count {
                        // op(T(x), K) = T(op(x, T⁻¹(K))), K broadcast up to the rank first.
                        let expanded = [Int](repeating: 1, count: perm.count - k.shape.count) + k.shape
                        let kt = transpose(k.asFloat.data, shape: expanded, perm: inverse)
                        fresh += 1
                        let kName = "\(other)#nchw\(fresh)", tmp = "\(cOut)#nchw\(fresh)"
                        constants[kName] = .float(Tensor(shape: kt.shape, data: kt.data))
                        steps[c].inputs[side] = x
                        steps[c].inputs[1 - side] = kName
                        steps[c].outputs = [tmp]
                        shapes[tmp] = xShape
                        cNode.name += "#nchw"
                        steps[c].kind = .generic(cNode)
                        var moved = steps[t]
                        moved.inputs = [tmp]
                        moved.outputs = [cOut]
                        steps.remove(at: t)
                        steps.insert(moved, at: c)
                        changed = true
                        break
                    }
                    // op(T(x), T(w)) = T(op(x, w)) when the other side is the same Transpose.
                    if let o = steps.firstIndex(where: { $0.outputs.first == other }), o != t,
                       case .generic(let oNode) = steps[o].kind, oNode.op == "Transpose",
                       (oNode.ints("perm") ?? []) == perm, consumers(of: other) == [c],
                       let w = steps[o].inputs.first, shapes[w] == xShape {
                        fresh += 1
                        let tmp = "\(cOut)#nchw\(fresh)"
                        steps[c].inputs[side] = x
                        steps[c].inputs[1 - side] = w
                        steps[c].outputs = [tmp]
                        shapes[tmp] = xShape
                        var moved = steps[t]
                        moved.inputs = [tmp]
                        moved.outputs = [cOut]
                        let cIndex = c
                        steps.insert(moved, at: cIndex + 1)
                        for r in [t, o].sorted(by: >) { steps.remove(at: r) }
                        changed = true
                        break
                    }
                }
            }
        }
    }

    /// The integers of a constant (a Pad's pads given as an input), if `name` is one.
    func constantInts(_ name: String?) -> [Int]? {
        guard let name, !name.isEmpty, let value = constants[name] else { return nil }
        if case .int64(_, let data) = value { return data.map { Int($0) } }
        return nil
    }
}
