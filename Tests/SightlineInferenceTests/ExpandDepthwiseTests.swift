import Testing
import SightlineCore
import SightlineTestSupport
@testable import SightlineInference
@testable import SightlineKernels

/// The fused 1×1 → depthwise kernel against the two reference convolutions, and the planner
/// pass that uses it.
/// The planner pass that fuses a 1×1 convolution with the depthwise one it feeds.
@Suite struct ExpandDepthwisePlannerTests {
    /// A graph Conv 1×1 (+ Clip) → depthwise Conv plans as one fused step that computes what the
    /// reference convolutions do; when the expanded tensor is also a graph output, the two stay
    /// apart.
    @Test func plannerFusesOnlyASoleConsumer() throws {
        let (c, e, h, w) = (8, 16, 9, 9)
        let expandWeight = Tensor(shape: [e, c, 1, 1], data: random(e * c, seed: 51))
        let dwWeight = Tensor(shape: [e, 1, 3, 3], data: random(e * 9, seed: 52))
        let dwBias = Tensor(shape: [e], data: random(e, seed: 53))
        let x = Tensor(shape: [1, c, h, w], data: random(c * h * w, seed: 54))
        func graph(outputs: [String]) -> IRGraph {
            let nodes = [
                IRNode(op: "Conv", name: "expand", inputs: ["x", "we"], outputs: ["e"], attributes: [:]),
                IRNode(op: "Clip", name: "clip", inputs: ["e", "lo", "hi"], outputs: ["a"], attributes: [:]),
                IRNode(op: "Conv", name: "dw", inputs: ["a", "wd", "bd"], outputs: ["y"],
                       attributes: ["group": .int(Int64(e)), "pads": .ints([1, 1, 1, 1]), "strides": .ints([2, 2])]),
            ]
            let constants: [String: IRValue] = ["we": .float(expandWeight), "wd": .float(dwWeight), "bd": .float(dwBias),
                                                "lo": .float(Tensor(shape: [], data: [0])), "hi": .float(Tensor(shape: [], data: [6]))]
            return IRGraph(nodes: nodes, constants: constants, inputs: [.init(name: "x", dims: [1, c, h, w])], outputs: outputs,
                           metadata: [:], opset: 13)
        }
        let expanded = referenceConv2d(input: x.data, batch: 1, channels: c, height: h, width: w, weight: expandWeight.data, outChannels: e,
                                       bias: nil, groups: 1, geometry: Conv2DGeometry(kernelH: 1, kernelW: 1), activation: .clip(min: 0, max: 6))
        let expected = referenceConv2d(input: expanded, batch: 1, channels: e, height: h, width: w, weight: dwWeight.data, outChannels: e,
                                       bias: dwBias.data, groups: e,
                                       geometry: Conv2DGeometry(kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padTop: 1, padLeft: 1,
                                                                padBottom: 1, padRight: 1),
                                       activation: .none)
        let fusable = ExpandDepthwise.applies(expandedChannels: e, height: h, width: w,
                                              depthwise: Conv2DGeometry(kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padTop: 1, padLeft: 1,
                                                                        padBottom: 1, padRight: 1))
        let sole = try InferenceModel(graph: graph(outputs: ["y"]))
        #expect(try sole.planSummary(for: [1, c, h, w]) == (fusable ? ["Conv+DepthwiseConv(fused)": 1] : ["Conv": 2]))
        #expect(normalizedMSE(try #require(try sole.run(x)["y"]).data, expected) < 1e-10)
        let shared = try InferenceModel(graph: graph(outputs: ["y", "a"]))
        #expect(try shared.planSummary(for: [1, c, h, w]) == ["Conv": 2])
        let outputs = try shared.run(x)
        #expect(normalizedMSE(try #require(outputs["y"]).data, expected) < 1e-10)
        #expect(normalizedMSE(try #require(outputs["a"]).data, expanded) < 1e-10)
    }
}
