import Foundation
import SightlineCore
import SightlineKernels

/// Operators that move, reshape, cut or build tensors (mostly folded to constants while planning).
extension OperatorCall {
    /// Transpose.
    func transpose() throws -> [IRValue] {
        let v = try input(0)
        let perm = node.ints("perm") ?? Array((0..<v.shape.count).reversed())
        guard perm.sorted() == Array(0..<v.shape.count) else {
            throw ModelError.malformed("Transpose '\(node.name)': perm \(perm) for rank \(v.shape.count)")
        }
        switch v {
        case .float(let t):
            let (data, shape) = SightlineKernels.transpose(t.data, shape: t.shape, perm: perm)
            return [.float(Tensor(shape: shape, data: data))]
        case .int64(let shape, let data):
            let (d, s) = SightlineKernels.transpose(data.map(Float.init), shape: shape, perm: perm)
            return [.int64(shape: s, data: d.map { Int64($0) })]
        }
    }

    /// Reshape.
    func reshape() throws -> [IRValue] {
        let v = try input(0)
        guard let target = optionalInts(1) else { throw ModelError.missing("Reshape '\(node.name)' needs a constant shape") }
        return [Operators.reshaped(v, try Operators.resolveReshape(target, from: v.shape, allowZero: node.int("allowzero", 0) != 0, node: node))]
    }

    /// Flatten.
    func flatten() throws -> [IRValue] {
        let v = try input(0)
        var axis = node.int("axis", 1)
        if axis < 0 { axis += v.shape.count }
        guard axis >= 0, axis <= v.shape.count else { throw ModelError.malformed("Flatten '\(node.name)' axis \(axis)") }
        let outer = v.shape.prefix(axis).reduce(1, *)
        return [Operators.reshaped(v, [outer, v.shape.dropFirst(axis).reduce(1, *)])]
    }

    /// Squeeze.
    func squeeze() throws -> [IRValue] {
        let v = try input(0)
        let axes = (node.ints("axes") ?? optionalInts(1))?.map { $0 < 0 ? $0 + v.shape.count : $0 }
        if let axes, !axes.allSatisfy({ $0 >= 0 && $0 < v.shape.count && v.shape[$0] == 1 }) {
            throw ModelError.shapeMismatch("Squeeze '\(node.name)': axes \(axes) of shape \(v.shape)")
        }
        let shape = v.shape.enumerated().filter { item in
            if let axes { return !axes.contains(item.offset) }
            return item.element != 1
        }.map(\.element)
        return [Operators.reshaped(v, shape)]
    }

    /// Unsqueeze.
    func unsqueeze() throws -> [IRValue] {
        let v = try input(0)
        guard let rawAxes = node.ints("axes") ?? optionalInts(1) else { throw ModelError.missing("Unsqueeze '\(node.name)' axes") }
        let rank = v.shape.count + rawAxes.count
        let axes = Set(rawAxes.map { $0 < 0 ? $0 + rank : $0 })
        guard axes.count == rawAxes.count, axes.allSatisfy({ $0 >= 0 && $0 < rank }) else {
            throw ModelError.shapeMismatch("Unsqueeze '\(node.name)': axes \(rawAxes) for rank \(v.shape.count)")
        }
        var shape: [Int] = []
        var source = v.shape.makeIterator()
        for i in 0..<rank { shape.append(axes.contains(i) ? 1 : (source.next() ?? 1)) }
        return [Operators.reshaped(v, shape)]
    }

    /// Concat.
    func concat() throws -> [IRValue] {
        let values = inputs.compactMap { $0 }.filter { !$0.shape.contains(0) || $0.shape.count > 1 }
        guard let first = values.first else { return [try input(0)] }
        var axis = node.int("axis", 0)
        if axis < 0 { axis += first.shape.count }
        return [try Operators.concat(values, axis: axis, node: node)]
    }

    /// Slice.
    func slice() throws -> [IRValue] {
        let v = try input(0)
        guard let starts = optionalInts(1), let ends = optionalInts(2) else { throw ModelError.missing("Slice '\(node.name)' needs constant starts/ends") }
        let axes = optionalInts(3) ?? Array(0..<starts.count)
        let steps = optionalInts(4) ?? [Int](repeating: 1, count: starts.count)
        guard ends.count == starts.count, axes.count == starts.count, steps.count == starts.count else {
            throw ModelError.malformed("Slice '\(node.name)': starts/ends/axes/steps of different lengths")
        }
        return [try Operators.slice(v, starts: starts, ends: ends, axes: axes, steps: steps, node: node)]
    }

    /// Gather.
    func gather() throws -> [IRValue] {
        let v = try input(0)
        let indices = try input(1)
        var axis = node.int("axis", 0)
        if axis < 0 { axis += v.shape.count }
        return [try Operators.gather(v, indices: indices, axis: axis, node: node)]
    }

    /// Shape.
    func shape() throws -> [IRValue] {
        let v = try input(0)
        return [.int64(shape: [v.shape.count], data: v.shape.map { Int64($0) })]
    }

    /// ConstantOfShape.
    func constantOfShape() throws -> [IRValue] {
        let shape = try input(0).asInt64.map { Int(truncatingIfNeeded: $0) }
        try Operators.checkShape(shape, node)
        let count = shape.reduce(1, *)
        if case .tensor(let value)? = node.attributes["value"] {
            if case .int64(_, let d) = value { return [.int64(shape: shape, data: [Int64](repeating: d.first ?? 0, count: count))] }
            return [.float(Tensor(shape: shape, data: [Float](repeating: value.asFloat.data.first ?? 0, count: count)))]
        }
        return [.float(Tensor(shape: shape, data: [Float](repeating: 0, count: count)))]
    }

    /// Pad.
    func pad() throws -> [IRValue] {
        let x = try floatInput(0)
        guard let pads = node.ints("pads") ?? optionalInts(1) else { throw ModelError.missing("Pad '\(node.name)' pads") }
        let mode = node.string("mode") ?? "constant"
        let value: Float = inputs.count > 2 ? (inputs[2]?.asFloat.data.first ?? 0) : node.float("value", 0)
        if mode == "constant" { return [.float(try Operators.pad(x, pads: pads, value: value, node: node))] }
        guard mode == "edge" || mode == "reflect" else { throw ModelError.unsupported("Pad mode '\(mode)' (node '\(node.name)')") }
        return [.float(try Operators.padBorder(x, pads: pads, reflect: mode == "reflect", node: node))]
    }

    /// DepthToSpace (NCHW): channel blocks become b×b spatial blocks. DCR (TensorFlow's order):
    /// out[n, c, h·b+i, w·b+j] = in[n, (i·b+j)·C' + c, h, w]; CRD: in[n, c·b·b + i·b + j, h, w].
    func depthToSpace() throws -> [IRValue] {
        let x = try floatInput(0)
        let b = node.int("blocksize", 0)
        guard x.rank == 4, b >= 1, x.shape[1] % (b * b) == 0 else {
            throw ModelError.shapeMismatch("DepthToSpace '\(node.name)': block size \(b) for shape \(x.shape)")
        }
        let crd = (node.string("mode") ?? "DCR") == "CRD"
        let (n, c, h, w) = (x.shape[0], x.shape[1] / (b * b), x.shape[2], x.shape[3])
        let outShape = [n, c, h * b, w * b]
        try Operators.checkShape(outShape, node)
        var out = [Float](repeating: 0, count: x.count)
        x.data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                guard let from = src.baseAddress, let to = dst.baseAddress else { return }
                for image in 0..<n {
                    for channel in 0..<c {
                        for i in 0..<b {
                            for j in 0..<b {
                                let source = crd ? channel * b * b + i * b + j : (i * b + j) * c + channel
                                let plane = from + (image * x.shape[1] + source) * h * w
                                for y in 0..<h {
                                    let row = to + ((image * c + channel) * h * b + y * b + i) * w * b + j
                                    let line = plane + y * w
                                    for xx in 0..<w { row[xx * b] = line[xx] }
                                }
                            }
                        }
                    }
                }
            }
        }
        return [.float(Tensor(shape: outShape, data: out))]
    }
}
