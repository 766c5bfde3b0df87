import Foundation
import SightlineCore
import SightlineKernels

/// x · Wᵀ + b over the last axis of x, W packed once (a Gemm or MatMul by constant weights).
struct LinearStep {
    var linear: PackedLinear

    func run(_ x: Tensor, threads: Int) -> Tensor {
        let rows = x.count / max(linear.inputs, 1)
        var out = [Float](repeating: 0, count: rows * linear.outputs)
        x.data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { run(src.baseAddress!, count: x.count, into: $0.baseAddress!, threads: threads) }
        }
        return Tensor(shape: Array(x.shape.dropLast()) + [linear.outputs], data: out)
    }

    /// The same on `count` input floats, into `output` (every element written).
    func run(_ x: UnsafePointer<Float>, count: Int, into output: UnsafeMutablePointer<Float>, threads: Int) {
        linear.apply(x, rows: count / max(linear.inputs, 1), into: output, threads: threads)
    }
}

/// A convolution with its weights prepared once: bias and activation fused.
struct ConvStep {
    var geometry: Conv2DGeometry
    var weight: [Float]
    var bias: [Float]?
    var outChannels: Int
    var groups: Int
    var activation: Activation
    /// Take the implicit im2col where the packed kernel can (the `indirect-im2col` pass).
    var indirect = false
    /// Which depthwise kernel may run (the `interleave-depthwise` pass chooses the eight-lane one).
    var depthwiseKernel: DepthwiseKernel = .best

    static func make(node: IRNode, inputShape: [Int], weight: Tensor, bias: Tensor?, activation: Activation) throws -> ConvStep {
        guard weight.rank == 4, inputShape.count == 4 else { throw ModelError.unsupported("Conv with rank-\(weight.rank) weights (node '\(node.name)')") }
        let groups = node.int("group", 1)
        guard groups >= 1, inputShape[1] == weight.shape[1] * groups, weight.shape[0] % groups == 0 else {
            throw ModelError.shapeMismatch("Conv '\(node.name)': input \(inputShape), weight \(weight.shape), group \(groups)")
        }
        let kernel = node.ints("kernel_shape") ?? [weight.shape[2], weight.shape[3]]
        guard kernel == [weight.shape[2], weight.shape[3]] else {
            throw ModelError.shapeMismatch("Conv '\(node.name)': kernel_shape \(kernel) but weights \(weight.shape)")
        }
        if let bias, bias.count != weight.shape[0] {
            throw ModelError.shapeMismatch("Conv '\(node.name)': \(bias.count) biases for \(weight.shape[0]) filters")
        }
        let g = try Operators.geometry(node, inputShape: inputShape, kernel: kernel)
        try Operators.checkShape([inputShape[0], weight.shape[0], 1, 1], node)
        return ConvStep(geometry: g, weight: weight.data, bias: bias?.data, outChannels: weight.shape[0], groups: groups, activation: activation)
    }

    /// y·scale + shift after the activation, for scalar Mul/Add steps that follow an activated
    /// convolution (PP-LCNet's learnable affine blocks after every hard-swish). They cannot fold
    /// into the weights the way they do before the activation; applied in place while the
    /// output is still in cache, instead of two more passes that each allocate a tensor.
    var postAffine: (scale: Float, shift: Float)?

    /// A residual Add (with its Relu) this convolution computes on its own output: the step's
    /// second input is the other operand (`fuse-residual-add`). `join`, `joinInputs` and
    /// `intermediate` are the Add step it replaced and the convolution's own output, so
    /// `unfused` can give the two steps back (delta execution recomputes them separately).
    struct ResidualJoin {
        var join: IRNode
        /// The Add step's inputs in the plan (the convolution's output among them).
        var joinInputs: [String]
        var intermediate: String
        var activation: Activation
    }
    var residual: ResidualJoin?

    func applyPostAffine(_ out: UnsafeMutablePointer<Float>, count: Int) {
        guard let (scale, shift) = postAffine else { return }
        for i in 0..<count { out[i] = out[i] * scale + shift }
    }

    /// Weights transformed for Winograd F(2×2, 3×3), set by the `winograd` pass (after
    /// BatchNorm and affine folding changed the weights) for the 3×3 stride-1 convolutions.
    var winogradWeights: [Float]?
    /// The same, packed for the AVX2 GEMM kernel.
    var winogradPacked: [Float]?
    /// The output tile those weights are for (F(4×4, 3×3) only packed; see `prepareWinograd`).
    var winogradTile = Winograd.Tile.two

    /// Weights packed for `PackedConv` (ungrouped convolutions that do not take Winograd), set
    /// by the `pack-conv-weights` pass.
    var packedWeights: [Float]?
    /// A 1×1 convolution over a small plane, packed for `PackedConv.convTransposed` instead.
    var packedTransposed: [Float]?

    /// Every copy of `weight` the passes may prepare for a kernel, by name: what `WeightBank`
    /// shares between plans and `sightline models plan` counts.
    static var preparedForms: [(name: String, path: WritableKeyPath<ConvStep, [Float]?>)] {
        [("conv packed", \.packedWeights), ("conv packed transposed", \.packedTransposed), ("winograd transformed", \.winogradWeights),
         ("winograd packed", \.winogradPacked), ("depthwise interleaved", \.depthwiseInterleaved)]
    }

    mutating func preparePacked(channels: Int, height: Int, width: Int) {
        guard winogradWeights == nil, winogradPacked == nil, PackedConv.applies(groups: groups) else { return }
        let depth = channels * geometry.kernelH * geometry.kernelW
        guard weight.count == outChannels * depth else { return }
        let pointwise = geometry == Conv2DGeometry(kernelH: 1, kernelW: 1)
        if pointwise && PackedConv.prefersTransposed(spatial: height * width) {
            packedTransposed = weight.withUnsafeBufferPointer { PackedConv.packTransposed($0.baseAddress!, outChannels: outChannels, channels: channels) }
        } else {
            packedWeights = weight.withUnsafeBufferPointer { PackedConv.pack($0.baseAddress!, outChannels: outChannels, depth: depth) }
        }
    }

    /// A depthwise convolution's weights and biases interleaved eight channels to a vector for
    /// the eight-lane kernel (`VectorDepthwise.interleavedWeights`), set by the
    /// `interleave-depthwise` pass.
    var depthwiseInterleaved: [Float]?

    mutating func prepareDepthwise(channels: Int) {
        guard groups == channels, groups == outChannels, groups > 1, weight.count == channels * geometry.kernelH * geometry.kernelW else { return }
        depthwiseInterleaved = weight.withUnsafeBufferPointer { w in
            withOptionalPointer(bias) { b in
                VectorDepthwise.interleavedWeights(w.baseAddress!, bias: b, channels: channels, taps: geometry.kernelH * geometry.kernelW)
            }
        }
        depthwiseKernel = .best
    }

    mutating func prepareWinograd(channels: Int, height: Int, width: Int) {
        guard Winograd.applies(channels: channels, outChannels: outChannels, groups: groups, geometry: geometry) else { return }
        let (oh, ow) = geometry.outputSize(height: height, width: width)
        if PackedConv.applies(groups: 1), Winograd.preferredTile(outHeight: oh, outWidth: ow) == .four {
            let transformed = weight.withUnsafeBufferPointer { Winograd.transformWeights43($0.baseAddress!, outChannels: outChannels, channels: channels) }
            if let packed = Winograd.packTransformed(transformed, outChannels: outChannels, channels: channels, tile: .four) {
                winogradPacked = packed
                winogradTile = .four
                return
            }
        }
        let transformed = weight.withUnsafeBufferPointer { Winograd.transformWeights($0.baseAddress!, outChannels: outChannels, channels: channels) }
        winogradPacked = Winograd.packTransformed(transformed, outChannels: outChannels, channels: channels)
        // The kernel reads the packed copy when there is one, never both (open_nsfw: 19 MB).
        winogradWeights = winogradPacked == nil ? transformed : nil
    }

    /// The copies of the weights `run` can take, in the order it prefers them.
    enum KernelWeights: Equatable {
        case packedTransposed, packed, winograd
        /// `weight` itself (with `depthwiseInterleaved` for depthwise convolutions).
        case folded
    }

    /// Which weights `run` reads for an input of `channels` channels: the first prepared form
    /// the passes made for this shape, else the folded weights.
    func kernelWeights(channels: Int) -> KernelWeights {
        let depth = channels * geometry.kernelH * geometry.kernelW
        if let packedTransposed, packedTransposed.count == PackedConv.transposedCount(outChannels: outChannels, channels: channels) {
            return .packedTransposed
        }
        if let packedWeights, packedWeights.count == PackedConv.packedCount(outChannels: outChannels, depth: depth) { return .packed }
        if let winogradPacked, winogradPacked.count == winogradTile.taps * PackedConv.packedCount(outChannels: outChannels, depth: channels) { return .winograd }
        if let winogradWeights, winogradWeights.count == winogradTile.taps * outChannels * channels { return .winograd }
        return .folded
    }

    /// The convolution alone, without a residual join (the generic Conv operator, and delta
    /// execution's unfused steps, which never carry one).
    func run(_ x: Tensor, threads: Int) -> Tensor {
        precondition(residual == nil, "a convolution with a fused residual join runs with its other operand")
        return unchecked(x, residual: nil, threads: threads)
    }

    /// The convolution, then the residual join on its output when `residual` is set; `r`, the
    /// other operand, must then be given and be the output's size (`checkResidual`).
    func run(_ x: Tensor, residual r: Tensor?, threads: Int) throws -> Tensor {
        try checkResidual(elements: r?.count, inputShape: x.shape)
        return unchecked(x, residual: residual == nil ? nil : r, threads: threads)
    }

    /// The one check of a residual join's other operand, for both entry points (tensors, and
    /// pointers into the activation arena): present, and as many values as the output for an
    /// input of `shape`, when this step joins one. A wrong size is an error, never a skipped join.
    func checkResidual(elements: Int?, inputShape shape: [Int]) throws {
        guard residual != nil else { return }
        let (oh, ow) = geometry.outputSize(height: shape[2], width: shape[3])
        let output = [shape[0], outChannels, oh, ow]
        guard let elements else { throw ModelError.missing("the residual operand of a convolution with output \(output)") }
        guard elements == output.reduce(1, *) else {
            throw ModelError.shapeMismatch("a convolution's residual operand has \(elements) values for an output \(output)")
        }
    }

    private func unchecked(_ x: Tensor, residual r: Tensor?, threads: Int) -> Tensor {
        let (batch, height, width) = (x.shape[0], x.shape[2], x.shape[3])
        let (oh, ow) = geometry.outputSize(height: height, width: width)
        let count = batch * outChannels * oh * ow
        // Every element is written by the kernel (GEMM with beta 0, or the depthwise loop), so
        // the buffer is not zero-filled first.
        var out = [Float](unsafeUninitializedCapacity: count) { _, initialised in initialised = count }
        x.data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                withOptionalPointer(r?.data) { other in
                    run(src.baseAddress!, shape: x.shape, residual: other, into: dst.baseAddress!, threads: threads)
                }
            }
        }
        return Tensor(shape: [batch, outChannels, oh, ow], data: out)
    }

    /// The convolution of `input` (NCHW, `shape`) into `output`, every element written; then the
    /// residual join with `r` (the other operand, the output's size) when `residual` is set.
    func run(_ input: UnsafePointer<Float>, shape: [Int], residual r: UnsafePointer<Float>?, into output: UnsafeMutablePointer<Float>,
             threads: Int) {
        let (batch, channels, height, width) = (shape[0], shape[1], shape[2], shape[3])
        let (oh, ow) = geometry.outputSize(height: height, width: width)
        let count = batch * outChannels * oh * ow
        withOptionalPointer(bias) { b in
            // The weights the planner's passes prepared decide the kernel (Passes/).
            switch kernelWeights(channels: channels) {
            case .packedTransposed:
                withOptionalPointer(packedTransposed) { p in
                    PackedConv.convTransposed(input: input, batch: batch, channels: channels, spatial: oh * ow, packedWeight: p!,
                                              outChannels: outChannels, bias: b, activation: activation, output: output, threads: threads)
                }
            case .packed:
                withOptionalPointer(packedWeights) { p in
                    PackedConv.conv(input: input, batch: batch, channels: channels, height: height, width: width, geometry: geometry,
                                    packedWeight: p!, outChannels: outChannels, bias: b, activation: activation,
                                    output: output, threads: threads, indirect: indirect)
                }
            case .winograd:
                withOptionalPointer(winogradWeights) { u in
                    withOptionalPointer(winogradPacked) { packed in
                        Winograd.conv(input: input, batch: batch, channels: channels, height: height, width: width,
                                      transformedWeights: u, outChannels: outChannels, bias: b, geometry: geometry,
                                      activation: activation, output: output, threads: threads, packedWeights: packed,
                                      tile: winogradTile)
                    }
                }
            case .folded:
                weight.withUnsafeBufferPointer { w in
                    withOptionalPointer(depthwiseInterleaved) { interleaved in
                        conv2d(input: input, batch: batch, channels: channels, height: height, width: width, weight: w.baseAddress!,
                               outChannels: outChannels, bias: b, groups: groups, geometry: geometry, activation: activation,
                               output: output, threads: threads, depthwiseInterleaved: interleaved,
                               depthwiseKernel: depthwiseKernel)
                    }
                }
            }
        }
        applyPostAffine(output, count: count)
        if let join = residual, let r { residualJoin(output, r, count: count, activation: join.activation) }
    }
}
