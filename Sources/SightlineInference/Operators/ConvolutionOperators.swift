import Foundation
import SightlineCore
import SightlineKernels

/// Convolutions, pooling and resizing over NCHW images (the planner replaces most convolutions with `ConvStep`s; these run the rest, and fold constants).
extension OperatorCall {
    /// Conv.
    func conv() throws -> [IRValue] {
        let x = try floatInput(0), w = try floatInput(1)
        let b = inputs.count > 2 ? inputs[2]?.asFloat : nil
        return [.float(try ConvStep.make(node: node, inputShape: x.shape, weight: w, bias: b, activation: .none).run(x, threads: 1))]
    }

    /// ConvTranspose.
    func convTranspose() throws -> [IRValue] {
        let x = try floatInput(0), w = try floatInput(1)
        let b = inputs.count > 2 ? inputs[2]?.asFloat : nil
        guard x.rank == 4, w.rank == 4 else { throw ModelError.unsupported("ConvTranspose of rank \(x.rank) (node '\(node.name)')") }
        let groups = node.int("group", 1)
        guard groups >= 1, w.shape[0] == x.shape[1], x.shape[1] % groups == 0 else {
            throw ModelError.shapeMismatch("ConvTranspose '\(node.name)': input \(x.shape), weight \(w.shape)")
        }
        let outChannels = w.shape[1] * groups
        if let b, b.count != outChannels { throw ModelError.shapeMismatch("ConvTranspose '\(node.name)' bias") }
        let kernel = node.ints("kernel_shape") ?? [w.shape[2], w.shape[3]]
        let strides = node.ints("strides") ?? [1, 1], dilations = node.ints("dilations") ?? [1, 1]
        var pads = node.ints("pads") ?? [0, 0, 0, 0]
        if pads.isEmpty { pads = [0, 0, 0, 0] }
        let outputPadding = node.ints("output_padding") ?? [0, 0]
        guard kernel == [w.shape[2], w.shape[3]], strides.count == 2, dilations.count == 2, pads.count == 4, outputPadding.count == 2,
              strides.allSatisfy({ (1...64).contains($0) }), dilations.allSatisfy({ (1...64).contains($0) }), pads.allSatisfy({ (0...64).contains($0) }) else {
            throw ModelError.malformed("bad ConvTranspose attributes in node '\(node.name)'")
        }
        let oh = (x.shape[2] - 1) * strides[0] - pads[0] - pads[2] + dilations[0] * (kernel[0] - 1) + 1 + outputPadding[0]
        let ow = (x.shape[3] - 1) * strides[1] - pads[1] - pads[3] + dilations[1] * (kernel[1] - 1) + 1 + outputPadding[1]
        guard oh > 0, ow > 0 else { throw ModelError.shapeMismatch("ConvTranspose '\(node.name)' output would be empty") }
        try Operators.checkShape([x.shape[0], outChannels, oh, ow], node)
        let g = Conv2DGeometry(kernelH: kernel[0], kernelW: kernel[1], strideH: strides[0], strideW: strides[1],
                               padTop: pads[0], padLeft: pads[1], padBottom: pads[2], padRight: pads[3],
                               dilationH: dilations[0], dilationW: dilations[1])
        // An activation the `fold-conv-transpose` pass moved into this step.
        let activation: Activation
        switch node.string("sightline.activation") {
        case nil: activation = .none
        case let name?:
            guard ExecutionPlan.convTransposeActivations.contains(name) else {
                throw ModelError.malformed("ConvTranspose '\(node.name)': unknown fused activation \(name)")
            }
            activation = try Operators.activation(IRNode(op: name, name: node.name, inputs: [], outputs: [], attributes: [:]), [])
        }
        // convTranspose2d writes every element.
        let count = x.shape[0] * outChannels * oh * ow
        var out = [Float](unsafeUninitializedCapacity: count) { _, n in n = count }
        x.data.withUnsafeBufferPointer { xp in
            w.data.withUnsafeBufferPointer { wp in
                out.withUnsafeMutableBufferPointer { op in
                    let biasData = b?.data ?? []
                    biasData.withUnsafeBufferPointer { bp in
                        convTranspose2d(input: xp.baseAddress!, batch: x.shape[0], channels: x.shape[1], height: x.shape[2], width: x.shape[3],
                                        weight: wp.baseAddress!, outChannels: outChannels, bias: b == nil ? nil : bp.baseAddress,
                                        groups: groups, geometry: g, outHeight: oh, outWidth: ow, output: op.baseAddress!,
                                        activation: activation)
                    }
                }
            }
        }
        return [.float(Tensor(shape: [x.shape[0], outChannels, oh, ow], data: out))]
    }

    /// MaxPool, AveragePool.
    func pool() throws -> [IRValue] {
        let x = try floatInput(0)
        guard x.rank == 4 else { throw ModelError.unsupported("\(node.op) on rank \(x.rank) (node '\(node.name)')") }
        let g = try Operators.geometry(node, inputShape: x.shape, kernel: node.ints("kernel_shape") ?? [1, 1])
        if node.int("ceil_mode", 0) != 0 { throw ModelError.unsupported("ceil_mode pooling (node '\(node.name)')") }
        let (oh, ow) = g.outputSize(height: x.shape[2], width: x.shape[3])
        var out = [Float](repeating: 0, count: x.shape[0] * x.shape[1] * oh * ow)
        x.data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                pool2d(input: src.baseAddress!, batch: x.shape[0], channels: x.shape[1], height: x.shape[2], width: x.shape[3],
                       geometry: g, isMax: node.op == "MaxPool", countIncludePad: node.int("count_include_pad", 0) != 0,
                       output: dst.baseAddress!)
            }
        }
        return [.float(Tensor(shape: [x.shape[0], x.shape[1], oh, ow], data: out))]
    }

    /// GlobalAveragePool.
    func globalAveragePool() throws -> [IRValue] {
        let x = try floatInput(0)
        guard x.rank >= 3 else { throw ModelError.shapeMismatch("GlobalAveragePool '\(node.name)' on shape \(x.shape)") }
        let planes = x.shape[0] * x.shape[1]
        var out = [Float](repeating: 0, count: planes)
        x.data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { SightlineKernels.globalAveragePool(input: src.baseAddress!, planes: planes, spatial: x.count / max(planes, 1), output: $0.baseAddress!) }
        }
        return [.float(Tensor(shape: [x.shape[0], x.shape[1]] + [Int](repeating: 1, count: x.rank - 2), data: out))]
    }

    /// Resize.
    func resize() throws -> [IRValue] {
        let x = try floatInput(0)
        guard x.rank == 4 else { throw ModelError.unsupported("Resize of rank \(x.rank) (node '\(node.name)')") }
        let scales = inputs.count > 2 ? inputs[2]?.asFloat.data : nil
        let sizes = inputs.count > 3 ? inputs[3]?.asInt64.map { Int($0) } : nil
        var outShape = x.shape
        if let sizes, sizes.count == 4 {
            outShape = sizes
        } else if let scales, scales.count == 4 {
            outShape = (0..<4).map { Int((Float(x.shape[$0]) * scales[$0]).rounded(.down)) }
        } else {
            throw ModelError.missing("Resize '\(node.name)' needs 4 scales or sizes")
        }
        guard outShape[0] == x.shape[0], outShape[1] == x.shape[1], outShape[2] > 0, outShape[3] > 0 else {
            throw ModelError.unsupported("Resize '\(node.name)' of batch/channel axes")
        }
        try Operators.checkShape(outShape, node)
        let mode = node.string("mode") ?? "nearest"
        let transform = node.string("coordinate_transformation_mode") ?? "half_pixel"
        let nearestMode = node.string("nearest_mode") ?? "round_prefer_floor"
        let scaleH = scales.map { $0[2] } ?? Float(outShape[2]) / Float(x.shape[2])
        let scaleW = scales.map { $0[3] } ?? Float(outShape[3]) / Float(x.shape[3])
        return [.float(try Operators.resize(x, to: outShape, mode: mode, transform: transform, nearestMode: nearestMode, scaleH: scaleH, scaleW: scaleW, node: node))]
    }
}
