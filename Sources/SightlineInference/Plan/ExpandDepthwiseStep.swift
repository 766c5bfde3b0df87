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
        // `make` only fuses a depthwise step whose weights the planner interleaved.
        guard let depthwiseInterleaved = depthwise.depthwiseInterleaved else {
            return depthwise.run(expand.run(x, threads: threads), threads: threads)
        }
        let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let c = expand.outChannels
        let (oh, ow) = depthwise.geometry.outputSize(height: height, width: width)
        // Every element is written by the depthwise kernel.
        var out = [Float](unsafeUninitializedCapacity: batch * c * oh * ow) { _, count in count = batch * c * oh * ow }
        x.data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                expandPanels.withUnsafeBufferPointer { w in
                    depthwiseInterleaved.withUnsafeBufferPointer { dw in
                        withOptionalPointer(expand.bias) { bias in
                            ExpandDepthwise.run(input: src.baseAddress!, batch: batch, channels: channels, height: height, width: width,
                                                expandWeights: w.baseAddress!, expandBias: bias,
                                                expandActivation: expand.activation.kernelActivation ?? .none, expandedChannels: c,
                                                depthwise: depthwise.geometry, interleaved: dw.baseAddress!,
                                                activation: depthwise.activation, output: dst.baseAddress!, threads: threads)
                        }
                    }
                }
            }
        }
        return Tensor(shape: [batch, c, oh, ow], data: out)
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
