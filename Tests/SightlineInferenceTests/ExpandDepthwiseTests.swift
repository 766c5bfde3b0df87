import Testing
import SightlineCore
@testable import SightlineInference
@testable import SightlineKernels

/// The fused 1×1 → depthwise kernel against the two reference convolutions, and the planner
/// pass that uses it.
@Suite struct ExpandDepthwiseTests {
    struct Case: Sendable, CustomStringConvertible {
        var batch: Int, channels: Int, expanded: Int, height: Int, width: Int
        var geometry: Conv2DGeometry
        var expandActivation: Activation, activation: Activation
        var description: String { "n\(batch) c\(channels)→\(expanded) \(height)×\(width) \(geometry.kernelH)x\(geometry.kernelW)/\(geometry.strideH)" }
    }

    /// 3×3 stride 1 with the xᵀ packing split over threads (16×16: 37 row panels); TF-SAME
    /// stride 2 (pads only bottom and right) on an odd 9-wide plane, where 7-row panels cross
    /// image rows; 5×5 stride 2 with a depthwise activation applied after the kernel (sigmoid);
    /// a 7×7 plane with EfficientNet's 5×5 and several panels of expanded channels.
    static let cases: [Case] = [
        Case(batch: 1, channels: 16, expanded: 32, height: 16, width: 16,
             geometry: Conv2DGeometry(kernelH: 3, kernelW: 3, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1),
             expandActivation: .clip(min: 0, max: 6), activation: .clip(min: 0, max: 6)),
        Case(batch: 2, channels: 5, expanded: 48, height: 10, width: 9,
             geometry: Conv2DGeometry(kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padBottom: 1, padRight: 1),
             expandActivation: .relu, activation: .none),
        Case(batch: 1, channels: 24, expanded: 16, height: 15, width: 15,
             geometry: Conv2DGeometry(kernelH: 5, kernelW: 5, strideH: 2, strideW: 2, padTop: 2, padLeft: 2, padBottom: 2, padRight: 2),
             expandActivation: .none, activation: .sigmoid),
        Case(batch: 1, channels: 40, expanded: 64, height: 7, width: 7,
             geometry: Conv2DGeometry(kernelH: 5, kernelW: 5, padTop: 2, padLeft: 2, padBottom: 2, padRight: 2),
             expandActivation: .clip(min: 0, max: 6), activation: .clip(min: 0, max: 6)),
    ]

    @Test(arguments: cases)
    func fusedMatchesTheTwoConvolutions(_ t: Case) throws {
        guard ExpandDepthwise.applies(expandedChannels: t.expanded, height: t.height, width: t.width, depthwise: t.geometry) else { return }
        let x = random(t.batch * t.channels * t.height * t.width, seed: 41)
        let w = random(t.expanded * t.channels, seed: 42), b = random(t.expanded, seed: 43)
        let taps = t.geometry.kernelH * t.geometry.kernelW
        let dw = random(t.expanded * taps, seed: 44), dwBias = random(t.expanded, seed: 45)
        let expanded = referenceConv2d(input: x, batch: t.batch, channels: t.channels, height: t.height, width: t.width, weight: w,
                                       outChannels: t.expanded, bias: b, groups: 1, geometry: Conv2DGeometry(kernelH: 1, kernelW: 1),
                                       activation: t.expandActivation)
        let expected = referenceConv2d(input: expanded, batch: t.batch, channels: t.expanded, height: t.height, width: t.width,
                                       weight: dw, outChannels: t.expanded, bias: dwBias, groups: t.expanded, geometry: t.geometry,
                                       activation: t.activation)
        let panels = w.withUnsafeBufferPointer { PackedConv.packTransposed($0.baseAddress!, outChannels: t.expanded, channels: t.channels) }
        let interleaved = dw.withUnsafeBufferPointer { d in
            dwBias.withUnsafeBufferPointer { VectorDepthwise.interleavedWeights(d.baseAddress!, bias: $0.baseAddress!, channels: t.expanded, taps: taps) }
        }
        let expandActivation = try #require(t.expandActivation.kernelActivation)
        for threads in [1, 2, 3] {
            var actual = [Float](repeating: .nan, count: expected.count)
            x.withUnsafeBufferPointer { xp in
                panels.withUnsafeBufferPointer { wp in
                    b.withUnsafeBufferPointer { bp in
                        interleaved.withUnsafeBufferPointer { ip in
                            actual.withUnsafeMutableBufferPointer {
                                ExpandDepthwise.run(input: xp.baseAddress!, batch: t.batch, channels: t.channels, height: t.height, width: t.width,
                                                    expandWeights: wp.baseAddress!, expandBias: bp.baseAddress!, expandActivation: expandActivation,
                                                    expandedChannels: t.expanded, depthwise: t.geometry, interleaved: ip.baseAddress!,
                                                    activation: t.activation, output: $0.baseAddress!, threads: threads)
                            }
                        }
                    }
                }
            }
            #expect(normalizedMSE(actual, expected) < 1e-10, "\(t), \(threads) threads")
        }
    }

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
