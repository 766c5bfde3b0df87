import SightlineCore
import SightlineKernels

/// What the passes share for reading and rewriting a plan: who consumes or produces a value,
/// renaming, and reading small constants.
extension ExecutionPlan {
    func consumers(of name: String) -> [Int] {
        steps.indices.filter { steps[$0].inputs.contains(name) }
    }

    /// The one step reading `name`, if exactly one does.
    func soleConsumer(of name: String) -> Int? {
        let users = consumers(of: name)
        return users.count == 1 ? users.first : nil
    }

    /// Step `u` (the sole reader of step `i`'s output, after it) is now done by step `i`, which
    /// writes `u`'s output instead (the fusing passes' last move).
    mutating func absorb(_ u: Int, into i: Int) {
        let result = steps[u].outputs[0]
        shapes[result] = shapes[steps[i].outputs[0]]
        steps[i].outputs = [result]
        steps.remove(at: u)
    }

    mutating func rename(_ old: String, to new: String) {
        for i in steps.indices {
            steps[i].inputs = steps[i].inputs.map { $0 == old ? new : $0 }
        }
        if outputs.contains(old) {
            // Keep the graph's output name: make the producer of `new` write `old` instead.
            outputs = outputs.map { $0 == old ? new : $0 }
        }
    }

    /// A per-channel affine map y = (x + before)·scale + after, in the order of operations the
    /// graph's own step uses (a folded BatchNormalization rounds as it did unfolded).
    struct ChannelAffine {
        var before: [Float], scale: [Float], after: [Float]

        func apply(_ x: Float, channel c: Int) -> Float { (x + before[c]) * scale[c] + after[c] }
    }

    /// The per-channel affine map of `node` (inputs `inputs`) on the value `x` with `channels`
    /// channels: Add, Sub (either side), Mul by a per-channel or scalar constant, or an inference
    /// BatchNormalization with constant parameters; nil for anything else.
    func channelAffine(_ node: IRNode, inputs: [String], reading x: String, channels: Int) -> ChannelAffine? {
        let zeros = [Float](repeating: 0, count: channels), ones = [Float](repeating: 1, count: channels)
        if ["Add", "Sub", "Mul"].contains(node.op), inputs.count == 2, inputs.contains(x), inputs[0] != inputs[1] {
            let xFirst = inputs[0] == x
            guard let k = constants[xFirst ? inputs[1] : inputs[0]]?.asFloat,
                  let perChannel = ExecutionPlan.perChannel(k, channels: channels) else { return nil }
            switch node.op {
            case "Add": return ChannelAffine(before: zeros, scale: ones, after: perChannel)
            case "Sub": return xFirst ? ChannelAffine(before: zeros, scale: ones, after: perChannel.map { -$0 })
                                      : ChannelAffine(before: zeros, scale: ones.map { -$0 }, after: perChannel)
            default: return ChannelAffine(before: zeros, scale: perChannel, after: zeros)
            }
        }
        guard node.op == "BatchNormalization", inputs.count >= 5, inputs[0] == x,
              let scale = constants[inputs[1]]?.asFloat.data, let shift = constants[inputs[2]]?.asFloat.data,
              let mean = constants[inputs[3]]?.asFloat.data, let variance = constants[inputs[4]]?.asFloat.data,
              [scale, shift, mean, variance].allSatisfy({ $0.count == channels }) else { return nil }
        let eps = node.float("epsilon", 1e-5)
        return ChannelAffine(before: mean.map { -$0 }, scale: (0..<channels).map { scale[$0] / (variance[$0] + eps).squareRoot() }, after: shift)
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

    /// Clip's bounds from its inputs (opset ≥ 11) or attributes.
    func clipBounds(_ i: Int) -> (Float, Float)? {
        guard let node = genericNode(i) else { return nil }
        let lo = steps[i].inputs.count > 1 && !steps[i].inputs[1].isEmpty ? scalarConstant(steps[i].inputs[1]) : node.float("min", -.infinity)
        let hi = steps[i].inputs.count > 2 && !steps[i].inputs[2].isEmpty ? scalarConstant(steps[i].inputs[2]) : node.float("max", .infinity)
        guard let lo, let hi else { return nil }
        return (lo, hi)
    }

    func producer(of name: String) -> Int? { steps.firstIndex { $0.outputs.contains(name) } }

    func genericNode(_ i: Int) -> IRNode? {
        if case .generic(let node) = steps[i].kind { return node }
        return nil
    }

    func scalarConstant(_ name: String) -> Float? {
        guard let v = constants[name], v.shape.reduce(1, *) == 1 else { return nil }
        return v.asFloat.data.first
    }

    /// Calls `update` on every convolution step with its input shape (NCHW).
    mutating func updateConvolutions(_ update: (inout ConvStep, [Int]) -> Void) {
        for i in steps.indices {
            guard case .conv(var conv) = steps[i].kind, let shape = shapes[steps[i].inputs[0]], shape.count == 4 else { continue }
            update(&conv, shape)
            steps[i].kind = .conv(conv)
        }
    }
}
