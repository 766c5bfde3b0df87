import SightlineCore
import SightlineKernels

/// A 1×1 convolution whose output only feeds a depthwise convolution, run as one step on
/// `ExpandDepthwise` (the expanded tensor is never written out in NCHW). Both convolutions
/// stay whole inside it: delta execution and anything else that walks convolutions one by one
/// sees them through `PlanStep.unfused`, the intermediate keeping its graph name.
struct ExpandDepthwiseStep {
    var expand: ConvStep
    var depthwise: ConvStep
    /// The expanded tensor's name (an input of `depthwise` in `unfused`).
    var intermediate: String
    /// The expand weights as 16-column panels of Wᵀ (`PackedConv.packTransposed`): the expand
    /// step's own when it runs transposed (planes up to 14×14), else packed here.
    var expandPanels: [Float]

    /// Fuses `expand` → `depthwise` when the kernels take them: an unpadded 1×1 stride-1
    /// expand with a fusable activation and no post-affine, into a depthwise convolution of the
    /// same channels on a plane size `ExpandDepthwise` applies to.
    static func make(expand: ConvStep, depthwise: ConvStep, intermediate: String, inputShape x: [Int]) -> ExpandDepthwiseStep? {
        guard x.count == 4, expand.geometry == Conv2DGeometry(kernelH: 1, kernelW: 1), expand.groups == 1,
              expand.postAffine == nil, depthwise.postAffine == nil, expand.activation.kernelActivation != nil,
              depthwise.groups == expand.outChannels, depthwise.outChannels == expand.outChannels,
              expand.weight.count == expand.outChannels * x[1], depthwise.depthwiseInterleaved != nil,
              ExpandDepthwise.applies(expandedChannels: expand.outChannels, height: x[2], width: x[3], depthwise: depthwise.geometry)
        else { return nil }
        let count = PackedConv.transposedCount(outChannels: expand.outChannels, channels: x[1])
        let panels = expand.packedTransposed.flatMap { $0.count == count ? $0 : nil } ?? expand.weight.withUnsafeBufferPointer {
            PackedConv.packTransposed($0.baseAddress!, outChannels: expand.outChannels, channels: x[1])
        }
        return ExpandDepthwiseStep(expand: expand, depthwise: depthwise, intermediate: intermediate, expandPanels: panels)
    }

    func run(_ x: Tensor, threads: Int) -> Tensor {
        let shape = outputShape(input: x.shape)
        let count = shape.reduce(1, *)
        // Every element is written by the depthwise kernel.
        var out = [Float](unsafeUninitializedCapacity: count) { _, initialised in initialised = count }
        x.data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { run(src.baseAddress!, shape: x.shape, into: $0.baseAddress!, threads: threads) }
        }
        return Tensor(shape: shape, data: out)
    }

    func outputShape(input x: [Int]) -> [Int] {
        let (oh, ow) = depthwise.geometry.outputSize(height: x[2], width: x[3])
        return [x[0], expand.outChannels, oh, ow]
    }

    /// The step on `input` (NCHW, `shape`) into `output`, every element written.
    func run(_ input: UnsafePointer<Float>, shape: [Int], into output: UnsafeMutablePointer<Float>, threads: Int) {
        let (batch, channels, height, width) = (shape[0], shape[1], shape[2], shape[3])
        // `make` only fuses a depthwise step whose weights the planner interleaved.
        guard let depthwiseInterleaved = depthwise.depthwiseInterleaved else {
            let expanded = expand.run(Tensor(shape: shape, data: Array(UnsafeBufferPointer(start: input, count: shape.reduce(1, *)))),
                                      threads: threads)
            expanded.data.withUnsafeBufferPointer { depthwise.run($0.baseAddress!, shape: expanded.shape, residual: nil, into: output, threads: threads) }
            return
        }
        expandPanels.withUnsafeBufferPointer { w in
            depthwiseInterleaved.withUnsafeBufferPointer { dw in
                withOptionalPointer(expand.bias) { bias in
                    ExpandDepthwise.run(input: input, batch: batch, channels: channels, height: height, width: width,
                                        expandWeights: w.baseAddress!, expandBias: bias,
                                        expandActivation: expand.activation.kernelActivation ?? .none, expandedChannels: expand.outChannels,
                                        depthwise: depthwise.geometry, interleaved: dw.baseAddress!,
                                        activation: depthwise.activation, output: output, threads: threads)
                }
            }
        }
    }
}

extension PlanStep {
    /// This step as the plain steps it stands for: a fused expand → depthwise step is its two
    /// convolutions, a convolution with a residual join is the convolution and its Add (for
    /// delta execution and MAC counts); any other step is itself.
    var unfused: [PlanStep] {
        switch kind {
        case .expandDepthwise(let fused):
            return [PlanStep(kind: .conv(fused.expand), inputs: [inputs[0]], outputs: [fused.intermediate]),
                    PlanStep(kind: .conv(fused.depthwise), inputs: [fused.intermediate], outputs: outputs)]
        case .conv(var conv):
            guard let residual = conv.residual, inputs.count == 2 else { return [self] }
            conv.residual = nil
            return [PlanStep(kind: .conv(conv), inputs: [inputs[0]], outputs: [residual.intermediate]),
                    PlanStep(kind: .generic(residual.join), inputs: residual.joinInputs, outputs: outputs)]
        default:
            return [self]
        }
    }
}
