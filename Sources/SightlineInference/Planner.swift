import Foundation
import SightlineCore
import SightlineKernels

/// One step of a specialised plan: a fused convolution or any other operator.
struct PlanStep {
    enum Kind {
        case conv(ConvStep)
        case generic(IRNode)
        /// softmax(Q·Kᵀ·scale)·V over the last two axes of [..., L, d] tensors (fused kernel).
        case attention(scale: Float)
        /// LayerNorm over the last axis: inputs x, γ, β.
        case layerNorm(epsilon: Float)
        /// Gemm / MatMul by constant weights on pre-packed panels (input: the activations only).
        case linear(LinearStep)
        /// A 1×1 convolution feeding a depthwise one, computed together (input: the 1×1's).
        case expandDepthwise(ExpandDepthwiseStep)
    }

    var kind: Kind
    var inputs: [String]
    var outputs: [String]
    var op: String {
        switch kind {
        case .conv: "Conv"
        case .generic(let node): node.op
        case .attention: "Attention(fused)"
        case .layerNorm: "LayerNorm(fused)"
        case .linear: "Gemm(packed)"
        case .expandDepthwise: "Conv+DepthwiseConv(fused)"
        }
    }
}

/// A graph specialised for one input shape: shape-only subgraphs folded to constants, layout
/// transposes cancelled, BatchNorm/affine chains folded into convolutions, activations fused,
/// dead steps removed, and each intermediate released after its last use.
struct ExecutionPlan {
    var steps: [PlanStep]
    var constants: [String: IRValue]
    var outputs: [String]
    /// For each step, the values whose last use it is (their buffers are dropped after it).
    var releases: [[String]]
    var shapes: [String: [Int]]

    static let unaryElementwise: Set<String> = ["Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu", "Neg", "Sqrt", "Exp", "Erf", "Tanh", "Identity", "Dropout"]
    static let binaryElementwise: Set<String> = ["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"]

    /// Specialises `graph` for concrete input shapes by running it once on zeros: nodes whose
    /// inputs are all known (including Shape of anything, since shapes are now fixed) fold into
    /// constants; the rest become steps, with every value's shape recorded.
    static func build(graph: IRGraph, inputShapes: [String: [Int]]) throws -> ExecutionPlan {
        var constants = graph.constants
        var live: [String: IRValue] = [:]
        for input in graph.inputs {
            guard let shape = inputShapes[input.name] else { throw ModelError.missing("input '\(input.name)'") }
            live[input.name] = .float(Tensor(zeros: shape))
        }
        var steps: [PlanStep] = []
        for node in graph.nodes {
            let isConstant = node.op == "Shape"
                ? node.inputs.first.map { constants[$0] != nil || live[$0] != nil } ?? false
                : node.inputs.allSatisfy { $0.isEmpty || constants[$0] != nil }
            let values: [IRValue?] = node.inputs.map { $0.isEmpty ? nil : (constants[$0] ?? live[$0]) }
            for (i, name) in node.inputs.enumerated() where !name.isEmpty && values[i] == nil {
                throw ModelError.missing("value '\(name)' used by node '\(node.name)' before it is produced")
            }
            let outputs = try Operators.evaluate(node, values)
            for (name, value) in zip(node.outputs, outputs) {
                if isConstant { constants[name] = value } else { live[name] = value }
            }
            if !isConstant {
                steps.append(PlanStep(kind: .generic(node), inputs: node.inputs, outputs: node.outputs))
            }
        }
        var shapes: [String: [Int]] = [:]
        for (name, value) in live { shapes[name] = value.shape }
        var plan = ExecutionPlan(steps: steps, constants: constants, outputs: graph.outputs, releases: [], shapes: shapes)
        plan.removeAliases()
        plan.cancelTransposes()
        plan.removeAliases()
        plan.foldPads()
        plan.fuseAttention()
        plan.fuseLayerNorm()
        try plan.fuseConvolutions()
        plan.fuseHardSwish()
        plan.fusePostAffine()
        plan.fuseElementwiseActivations()
        plan.removeDeadSteps()
        plan.prepareKernelWeights()
        plan.fuseExpandDepthwise()
        plan.computeReleases()
        return plan
    }

    /// Weights rearranged for the fast kernels, once, after every pass that changes weights:
    /// 3×3 stride-1 convolutions run as Winograd F(2×2, 3×3) (SIGHTLINE_NO_WINOGRAD turns it
    /// off), other ungrouped ones on pre-packed panels (SIGHTLINE_NO_PACKED_CONV: OpenBLAS),
    /// depthwise ones with their weights interleaved for the eight-lane kernel.
    mutating func prepareKernelWeights() {
        let environment = ProcessInfo.processInfo.environment
        for i in steps.indices {
            guard case .conv(var conv) = steps[i].kind, let shape = shapes[steps[i].inputs[0]], shape.count == 4 else { continue }
            if environment["SIGHTLINE_NO_WINOGRAD"] == nil { conv.prepareWinograd(channels: shape[1]) }
            if environment["SIGHTLINE_NO_PACKED_CONV"] == nil { conv.preparePacked(channels: shape[1], height: shape[2], width: shape[3]) }
            conv.prepareDepthwise(channels: shape[1])
            steps[i].kind = .conv(conv)
        }
        if environment["SIGHTLINE_NO_PACKED_CONV"] == nil { packLinearLayers() }
    }

    /// Gemm (no transposed A, alpha = beta = 1) and MatMul whose weights are constants become
    /// `LinearStep`s: the weights are packed once here instead of OpenBLAS re-packing them on
    /// every call (EfficientNet's 1280→1000 classifier: 0.51 → 0.26 ms at one thread).
    mutating func packLinearLayers() {
        for i in steps.indices {
            guard case .generic(let node) = steps[i].kind, node.op == "Gemm" || node.op == "MatMul",
                  steps[i].inputs.count >= 2, let a = shapes[steps[i].inputs[0]], a.count >= 2,
                  case .float(let b)? = constants[steps[i].inputs[1]], b.rank == 2 else { continue }
            let isGemm = node.op == "Gemm"
            if isGemm && (a.count != 2 || node.int("transA", 0) != 0 || node.float("alpha", 1) != 1 || node.float("beta", 1) != 1) { continue }
            let transB = isGemm && node.int("transB", 0) != 0
            let (n, k) = transB ? (b.shape[0], b.shape[1]) : (b.shape[1], b.shape[0])
            guard a[a.count - 1] == k else { continue }
            var bias: [Float]? = nil
            if isGemm, steps[i].inputs.count > 2, !steps[i].inputs[2].isEmpty {
                guard case .float(let c)? = constants[steps[i].inputs[2]], c.count == n, c.shape.last == n else { continue }
                bias = c.data
            }
            // PackedLinear takes W as [outputs × inputs]: B itself when transposed, else Bᵀ.
            let weight = transB ? b.data : transpose(b.data, shape: [k, n], perm: [1, 0]).data
            guard let linear = PackedLinear(weight: weight, outputs: n, inputs: k, bias: bias) else { continue }
            steps[i].kind = .linear(LinearStep(linear: linear))
            steps[i].inputs = [steps[i].inputs[0]]
        }
    }

    // MARK: - Passes

    private func consumers(of name: String) -> [Int] {
        steps.indices.filter { steps[$0].inputs.contains(name) }
    }

    private mutating func rename(_ old: String, to new: String) {
        for i in steps.indices {
            steps[i].inputs = steps[i].inputs.map { $0 == old ? new : $0 }
        }
        if outputs.contains(old) {
            // Keep the graph's output name: make the producer of `new` write `old` instead.
            outputs = outputs.map { $0 == old ? new : $0 }
        }
    }

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

    /// Conv followed by per-channel Add/Sub/Mul constants or BatchNormalization folds into the
    /// convolution's weights and bias; a following activation runs inside the conv kernel.
    mutating func fuseConvolutions() throws {
        var i = 0
        var scratchShapes = shapes
        while i < steps.count {
            guard case .generic(let node) = steps[i].kind, node.op == "Conv",
                  let xName = steps[i].inputs.first, let xShape = scratchShapes[xName],
                  steps[i].inputs.count >= 2, let w = constants[steps[i].inputs[1]]?.asFloat else { i += 1; continue }
            let b = steps[i].inputs.count > 2 && !steps[i].inputs[2].isEmpty ? constants[steps[i].inputs[2]]?.asFloat : nil
            if steps[i].inputs.count > 2 && !steps[i].inputs[2].isEmpty && b == nil { i += 1; continue }
            var conv = try ConvStep.make(node: node, inputShape: xShape, weight: w, bias: b, activation: .none)
            var output = steps[i].outputs[0]
            let channels = conv.outChannels
            let kPerOut = conv.weight.count / channels
            // Absorb following steps while they are this conv's only consumer.
            while !outputs.contains(output) {
                let users = consumers(of: output)
                guard users.count == 1, let u = users.first, case .generic(let next) = steps[u].kind, steps[u].outputs.count == 1 else { break }
                var absorbed = false
                if Self.binaryElementwise.contains(next.op), ["Add", "Sub", "Mul"].contains(next.op), conv.activation == .none {
                    let other = steps[u].inputs[0] == output ? steps[u].inputs[1] : steps[u].inputs[0]
                    let convFirst = steps[u].inputs[0] == output
                    if let k = constants[other]?.asFloat, let perChannel = Self.perChannel(k, channels: channels) {
                        if conv.bias == nil { conv.bias = [Float](repeating: 0, count: channels) }
                        for c in 0..<channels {
                            switch next.op {
                            case "Add": conv.bias![c] += perChannel[c]
                            case "Sub":
                                if convFirst { conv.bias![c] -= perChannel[c] } else {
                                    conv.bias![c] = perChannel[c] - conv.bias![c]
                                    for j in 0..<kPerOut { conv.weight[c * kPerOut + j] = -conv.weight[c * kPerOut + j] }
                                }
                            default:
                                conv.bias![c] *= perChannel[c]
                                for j in 0..<kPerOut { conv.weight[c * kPerOut + j] *= perChannel[c] }
                            }
                        }
                        absorbed = true
                    }
                } else if next.op == "BatchNormalization", conv.activation == .none,
                          let scale = constants[steps[u].inputs[1]]?.asFloat.data, let shift = constants[steps[u].inputs[2]]?.asFloat.data,
                          let mean = constants[steps[u].inputs[3]]?.asFloat.data, let variance = constants[steps[u].inputs[4]]?.asFloat.data,
                          scale.count == channels {
                    let eps = next.float("epsilon", 1e-5)
                    if conv.bias == nil { conv.bias = [Float](repeating: 0, count: channels) }
                    for c in 0..<channels {
                        let std: Float = (variance[c] + eps).squareRoot()
                        let k: Float = scale[c] / std
                        for j in 0..<kPerOut { conv.weight[c * kPerOut + j] *= k }
                        let old: Float = conv.bias?[c] ?? 0
                        conv.bias?[c] = (old - mean[c]) * k + shift[c]
                    }
                    absorbed = true
                } else if ["Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish"].contains(next.op), conv.activation == .none,
                          steps[u].inputs.dropFirst().allSatisfy({ $0.isEmpty || constants[$0] != nil }) {
                    conv.activation = try Operators.activation(next, steps[u].inputs.map { $0.isEmpty ? nil : constants[$0] })
                    absorbed = true
                }
                guard absorbed else { break }
                let newOutput = steps[u].outputs[0]
                scratchShapes[newOutput] = scratchShapes[output]
                steps.remove(at: u)
                output = newOutput
            }
            steps[i] = PlanStep(kind: .conv(conv), inputs: [xName], outputs: [output])
            i += 1
        }
        shapes = scratchShapes
    }

    /// A constant that varies only along the channel axis of an NCHW tensor, as C values.
    static func perChannel(_ k: Tensor, channels: Int) -> [Float]? {
        if k.count == 1 { return [Float](repeating: k.data[0], count: channels) }
        guard k.count == channels else { return nil }
        let significant = k.shape.enumerated().filter { $0.element != 1 }
        guard significant.count == 1, let axis = significant.first?.offset else { return nil }
        // Aligned from the right against [N, C, H, W]: the channel axis is rank-3.
        guard k.shape.count - axis == 3 else { return nil }
        return k.data
    }

    /// Explicit padding before a convolution or max pool becomes the kernel's own padding:
    /// zero Pad → Conv (also through a layout Transpose), edge/zero Pad → MaxPool when every
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
            guard let p = steps.firstIndex(where: { $0.outputs.first == source }), case .generic(let padNode) = steps[p].kind,
                  padNode.op == "Pad", consumers(of: source).count == 1, !outputs.contains(source),
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
                guard mode == "constant", value == 0, (node.string("auto_pad") ?? "NOTSET") == "NOTSET" else { continue }
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

    /// An elementwise Add/Sub/Mul/Max/Min followed by Relu (the residual join) runs as one step.
    mutating func fuseElementwiseActivations() {
        var i = 0
        while i < steps.count {
            defer { i += 1 }
            guard case .generic(var node) = steps[i].kind, ["Add", "Sub", "Mul"].contains(node.op),
                  let out = steps[i].outputs.first, !outputs.contains(out) else { continue }
            let users = consumers(of: out)
            guard users.count == 1, let u = users.first, case .generic(let next) = steps[u].kind, next.op == "Relu",
                  let reluOut = steps[u].outputs.first else { continue }
            node.attributes["sightline.relu"] = .int(1)
            steps[i].kind = .generic(node)
            steps[i].outputs = [reluOut]
            shapes[reluOut] = shapes[out]
            steps.remove(at: u)
        }
    }

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
                      node.op != "Sub" || steps[u].inputs[0] == x, let result = steps[u].outputs.first else { break }
                var (scale, shift) = conv.postAffine ?? (1, 0)
                switch node.op {
                case "Mul": scale *= k; shift *= k
                case "Add": shift += k
                default: shift -= k
                }
                conv.postAffine = (scale, shift)
                steps[i].outputs = [result]
                shapes[result] = shapes[x]
                steps.remove(at: u)
                absorbed = true
            }
            if absorbed {
                steps[i].kind = .conv(conv)
                i = -1  // indices moved
            }
        }
    }

    /// Clip's bounds from its inputs (opset ≥ 11) or attributes.
    private func clipBounds(_ i: Int) -> (Float, Float)? {
        guard let node = genericNode(i) else { return nil }
        let lo = steps[i].inputs.count > 1 && !steps[i].inputs[1].isEmpty ? scalarConstant(steps[i].inputs[1]) : node.float("min", -.infinity)
        let hi = steps[i].inputs.count > 2 && !steps[i].inputs[2].isEmpty ? scalarConstant(steps[i].inputs[2]) : node.float("max", .infinity)
        guard let lo, let hi else { return nil }
        return (lo, hi)
    }

    private func producer(of name: String) -> Int? { steps.firstIndex { $0.outputs.contains(name) } }

    private func genericNode(_ i: Int) -> IRNode? {
        if case .generic(let node) = steps[i].kind { return node }
        return nil
    }

    private func scalarConstant(_ name: String) -> Float? {
        guard let v = constants[name], v.shape.reduce(1, *) == 1 else { return nil }
        return v.asFloat.data.first
    }

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

    /// The memory plan: after step i, drop the values it used last (outputs stay).
    mutating func computeReleases() {
        var lastUse: [String: Int] = [:]
        for (i, step) in steps.enumerated() {
            for input in step.inputs where !input.isEmpty && constants[input] == nil { lastUse[input] = i }
        }
        releases = [[String]](repeating: [], count: steps.count)
        for (name, index) in lastUse where !outputs.contains(name) { releases[index].append(name) }
    }
}
