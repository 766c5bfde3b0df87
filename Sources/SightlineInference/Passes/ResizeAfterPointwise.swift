import SightlineCore
import SightlineKernels

/// `resize-after-pointwise`: a 1×1 convolution reading a bilinear or nearest upsample runs
/// before it, on the small map.
struct ResizeAfterPointwisePass: PlanPass {
    let name = "resize-after-pointwise"
    let summary = "a 1×1 convolution reading an upsample runs before it, on the smaller map."

    func apply(to plan: inout ExecutionPlan) throws {
        plan.resizeAfterPointwise()
    }
}

extension ExecutionPlan {
    /// Conv1×1(Resize(x)) = Resize(Conv1×1(x)): a 1×1 convolution mixes channels at each pixel
    /// and a resize mixes pixels within each channel with weights that sum to one, so the two
    /// commute, bias included. Feature-pyramid decoders (BlazePose's person detector) upsample
    /// 1152 channels 2× and then reduce them to 192; convolving first does 4× fewer
    /// multiply-adds and resizes 6× fewer channels. Only a plain 1×1 Conv (stride 1, no
    /// padding, one group, no fused activation yet) that is the resize's only reader moves.
    mutating func resizeAfterPointwise() {
        var i = 0
        while i < steps.count {
            defer { i += 1 }
            guard case .generic(let conv) = steps[i].kind, conv.op == "Conv", let resized = steps[i].inputs.first,
                  let convOut = steps[i].outputs.first, steps[i].outputs.count == 1,
                  (conv.ints("kernel_shape") ?? constants[steps[i].inputs[1]]?.shape.suffix(2).map { $0 }) == [1, 1],
                  (conv.ints("strides") ?? [1, 1]).allSatisfy({ $0 == 1 }), (conv.ints("pads") ?? [0, 0, 0, 0]).allSatisfy({ $0 == 0 }),
                  (conv.ints("dilations") ?? [1, 1]).allSatisfy({ $0 == 1 }), conv.int("group", 1) == 1,
                  (conv.string("auto_pad") ?? "NOTSET") == "NOTSET",
                  steps[i].inputs.dropFirst().allSatisfy({ $0.isEmpty || constants[$0] != nil }),
                  let r = steps.firstIndex(where: { $0.outputs.first == resized }), case .generic(let resize) = steps[r].kind,
                  resize.op == "Resize", ["linear", "nearest"].contains(resize.string("mode") ?? "nearest"),
                  consumers(of: resized) == [i], !outputs.contains(resized),
                  let x = steps[r].inputs.first, let xShape = shapes[x], xShape.count == 4,
                  let weight = constants[steps[i].inputs[1]], weight.shape.count == 4,
                  let outShape = shapes[convOut], outShape.count == 4,
                  // Sizes or scales must be constants that keep batch and channel.
                  steps[r].inputs.dropFirst().allSatisfy({ $0.isEmpty || constants[$0] != nil })
            else { continue }
            // The resize's sizes name the channel count; with sizes, give the new channel count.
            var resizeInputs = steps[r].inputs
            if resizeInputs.count > 3, !resizeInputs[3].isEmpty, let sizes = constants[resizeInputs[3]]?.asInt64, sizes.count == 4 {
                let name = resizeInputs[3] + "#pointwise\(i)"
                constants[name] = .int64(shape: [4], data: [sizes[0], Int64(weight.shape[0]), sizes[2], sizes[3]])
                resizeInputs[3] = name
            }
            let small = convOut + "#small"
            shapes[small] = [xShape[0], weight.shape[0], xShape[2], xShape[3]]
            var convStep = steps[i]
            convStep.inputs[0] = x
            convStep.outputs = [small]
            var resizeStep = steps[r]
            resizeStep.inputs = [small] + resizeInputs.dropFirst()
            resizeStep.outputs = [convOut]
            // The resize (at r) becomes the convolution; the convolution (at i > r) becomes the resize.
            steps[r] = convStep
            steps[i] = resizeStep
            shapes[resized] = nil
        }
    }
}
