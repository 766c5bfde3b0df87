import SightlineCore
import SightlineKernels

/// `fold-pads`: explicit Pad before Conv / MaxPool becomes the kernel's own padding.
struct FoldPadsPass: PlanPass {
    let name = "fold-pads"
    let summary = "explicit Pad before Conv / MaxPool becomes the kernel's own padding."

    func apply(to plan: inout ExecutionPlan) throws {
        plan.foldPads()
    }
}

extension ExecutionPlan {
    /// Explicit padding before a convolution or max pool becomes the kernel's own padding:
    /// zero Pad → Conv (also through a layout Transpose, and into every Conv reading the Pad), edge/zero Pad → MaxPool when every
    /// padded window still covers a real cell (max over real cells is then the same).
    mutating func foldPads() {
        var i = 0
        while i < steps.count {
            defer { i += 1 }
            guard case .generic(var node) = steps[i].kind, node.op == "Conv" || node.op == "MaxPool",
                  let xName = steps[i].inputs.first else { continue }
            var source = xName
            var perm = [0, 1, 2, 3]
            var transposeIndex: Int?
            if let t = steps.firstIndex(where: { $0.outputs.first == source }), case .generic(let tNode) = steps[t].kind,
               tNode.op == "Transpose", consumers(of: source).count == 1, let p = tNode.ints("perm"), p.count == 4 {
                transposeIndex = t
                perm = p
                source = steps[t].inputs[0]
            }
            // Several convolutions may read one Pad (a detector's box and score heads): each takes
            // the padding, as long as every reader is a plain zero-padded Conv of it.
            let readers = consumers(of: source)
            let convReaders = transposeIndex == nil && node.op == "Conv" && readers.allSatisfy { r in
                if case .generic(let n) = steps[r].kind { return n.op == "Conv" && steps[r].inputs.first == source }
                return false
            }
            guard let p = steps.firstIndex(where: { $0.outputs.first == source }), case .generic(let padNode) = steps[p].kind,
                  padNode.op == "Pad", readers.count == 1 || convReaders, !outputs.contains(source),
                  let padInput = steps[p].inputs.first else { continue }
            let pads = padNode.ints("pads") ?? (steps[p].inputs.count > 1 ? constants[steps[p].inputs[1]]?.asInt64.map { Int($0) } : nil)
            guard let pads, pads.count == 8 else { continue }
            let mode = padNode.string("mode") ?? "constant"
            let value = steps[p].inputs.count > 2 && !steps[p].inputs[2].isEmpty ? constants[steps[p].inputs[2]]?.asFloat.data.first : 0
            // Pad amounts per output (NCHW) axis: output axis d reads source axis perm[d].
            let begin = (0..<4).map { pads[perm[$0]] }, end = (0..<4).map { pads[perm[$0] + 4] }
            guard begin[0] == 0, begin[1] == 0, end[0] == 0, end[1] == 0 else { continue }
            var existing = node.ints("pads") ?? [0, 0, 0, 0]
            if existing.isEmpty { existing = [0, 0, 0, 0] }
            if node.op == "Conv" {
                guard mode == "constant", value == 0 else { continue }
                let plain = readers.allSatisfy { r in
                    if case .generic(let n) = steps[r].kind { return (n.string("auto_pad") ?? "NOTSET") == "NOTSET" }
                    return r == i
                }
                guard plain || transposeIndex != nil, (node.string("auto_pad") ?? "NOTSET") == "NOTSET" else { continue }
                if transposeIndex == nil && readers.count > 1 {
                    for r in readers {
                        guard case .generic(var reader) = steps[r].kind else { continue }
                        var own = reader.ints("pads") ?? [0, 0, 0, 0]
                        if own.isEmpty { own = [0, 0, 0, 0] }
                        reader.attributes["pads"] = .ints([own[0] + begin[2], own[1] + begin[3], own[2] + end[2], own[3] + end[3]].map { Int64($0) })
                        steps[r].kind = .generic(reader)
                        steps[r].inputs[0] = padInput
                    }
                    steps.remove(at: p)
                    i = -1
                    continue
                }
            } else {
                let kernel = node.ints("kernel_shape") ?? [1, 1]
                guard mode == "edge" || (mode == "constant" && value == -.infinity),
                      begin[2] + existing[0] < kernel[0], end[2] + existing[2] < kernel[0],
                      begin[3] + existing[1] < kernel[1], end[3] + existing[3] < kernel[1] else { continue }
            }
            node.attributes["pads"] = .ints([existing[0] + begin[2], existing[1] + begin[3], existing[2] + end[2], existing[3] + end[3]].map { Int64($0) })
            steps[i].kind = .generic(node)
            if let t = transposeIndex {
                steps[t].inputs[0] = padInput
                if let shape = shapes[padInput] { shapes[steps[t].outputs[0]] = perm.map { shape[$0] } }
            } else {
                steps[i].inputs[0] = padInput
            }
            steps.remove(at: p)
            i = -1  // indices moved; start over (cheap: few pads)
        }
    }
}
