import Testing
import SightlineCore
@testable import SightlineInference
import SightlineKernels

@Suite struct ResizeOperatorTests {
    private func run(_ attributes: [String: IRAttribute], _ x: Tensor, scales: [Float]) throws -> Tensor {
        let node = IRNode(op: "Resize", name: "r", inputs: ["x", "", "s"], outputs: ["y"], attributes: attributes)
        return try Operators.evaluate(node, [.float(x), nil, .float(Tensor(shape: [4], data: scales))])[0].asFloat
    }

    @Test func nearestAsymmetricDoublesPixels() throws {
        let x = Tensor(shape: [1, 1, 2, 2], data: [1, 2, 3, 4])
        let y = try run(["mode": .string("nearest"), "coordinate_transformation_mode": .string("asymmetric"), "nearest_mode": .string("floor")],
                        x, scales: [1, 1, 2, 2])
        #expect(y.shape == [1, 1, 4, 4])
        #expect(y.data == [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
    }

    @Test func linearHalfPixelMatchesHandValues() throws {
        let x = Tensor(shape: [1, 1, 1, 2], data: [0, 4])
        let y = try run(["mode": .string("linear")], x, scales: [1, 1, 1, 2])
        // half_pixel: sources −0.25, 0.25, 0.75, 1.25 → clamped 0, 0.25, 0.75, 1.
        #expect(y.data == [0, 1, 3, 4])
        let corners = try run(["mode": .string("linear"), "coordinate_transformation_mode": .string("align_corners")], x, scales: [1, 1, 1, 2])
        #expect(corners.data.map { ($0 * 1000).rounded() / 1000 } == [0, 1.333, 2.667, 4])
    }

    @Test func unsupportedModesAreNamed() {
        let x = Tensor(shape: [1, 1, 2, 2], data: [1, 2, 3, 4])
        #expect(throws: ModelError.self) { try run(["mode": .string("cubic")], x, scales: [1, 1, 2, 2]) }
        #expect(throws: ModelError.self) { try run(["coordinate_transformation_mode": .string("tf_crop_and_resize")], x, scales: [1, 1, 2, 2]) }
    }
}

@Suite struct LayerNormalizationOperatorTests {
    @Test func nativeOperatorMatchesTheDefinition() throws {
        let x = Tensor(shape: [2, 4], data: [1, 2, 3, 4, 10, 10, 10, 14])
        let node = IRNode(op: "LayerNormalization", name: "ln", inputs: ["x", "g", "b"], outputs: ["y"], attributes: ["epsilon": .float(1e-5)])
        let y = try Operators.evaluate(node, [.float(x), .float(Tensor(shape: [4], data: [1, 1, 1, 2])), .float(Tensor(shape: [4], data: [0, 0, 0, 1]))])[0].asFloat
        for row in 0..<2 {
            let v = Array(x.data[(row * 4)..<(row * 4 + 4)])
            let mean = v.reduce(0, +) / 4
            let variance = v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 4
            for i in 0..<4 {
                let want = (v[i] - mean) / (variance + 1e-5).squareRoot() * (i == 3 ? 2 : 1) + (i == 3 ? 1 : 0)
                #expect(abs(y.data[row * 4 + i] - want) < 1e-5)
            }
        }
    }
}

@Suite struct PlanCacheTests {
    @Test func planCacheStaysBoundedWhenInputShapesKeepChanging() throws {
        let graph = IRGraph(nodes: [IRNode(op: "Relu", name: "r", inputs: ["x"], outputs: ["y"], attributes: [:])],
                            constants: [:], inputs: [.init(name: "x", dims: [1, 3, 48, nil])], outputs: ["y"], metadata: [:], opset: 13)
        let model = try InferenceModel(graph: graph)
        for width in 1...40 {
            let out = try model.run(Tensor(shape: [1, 3, 48, width], data: [Float](repeating: -1, count: 3 * 48 * width)))
            #expect(out["y"]?.data.allSatisfy { $0 == 0 } == true)
        }
        #expect(model.cachedPlanCount == InferenceModel.planCacheLimit)
    }
}

@Suite struct PostAffineFusionTests {
    /// Conv → Relu → Mul(0.5) → Add(2) → Sub(1): the scalar steps after the activation become
    /// the convolution's post-activation affine, with the same result as running them apart.
    @Test func scalarAffineAfterAnActivatedConvolutionIsFused() throws {
        let weight = Tensor(shape: [4, 3, 3, 3], data: (0..<108).map { Float(($0 * 37) % 17) / 8 - 1 })
        let x = Tensor(shape: [1, 3, 6, 5], data: (0..<90).map { Float(($0 * 13) % 11) / 5 - 1 })
        func scalar(_ v: Float) -> IRValue { .float(Tensor(shape: [], data: [v])) }
        let nodes = [
            IRNode(op: "Conv", name: "c", inputs: ["x", "w"], outputs: ["c"], attributes: ["pads": .ints([1, 1, 1, 1])]),
            IRNode(op: "Relu", name: "r", inputs: ["c"], outputs: ["r"], attributes: [:]),
            IRNode(op: "Mul", name: "m", inputs: ["half", "r"], outputs: ["m"], attributes: [:]),
            IRNode(op: "Add", name: "a", inputs: ["m", "two"], outputs: ["a"], attributes: [:]),
            IRNode(op: "Sub", name: "s", inputs: ["a", "one"], outputs: ["y"], attributes: [:]),
        ]
        let graph = IRGraph(nodes: nodes, constants: ["w": .float(weight), "half": scalar(0.5), "two": scalar(2), "one": scalar(1)],
                            inputs: [.init(name: "x", dims: [1, 3, 6, 5])], outputs: ["y"], metadata: [:], opset: 13)
        let model = try InferenceModel(graph: graph)
        let summary = try model.planSummary(for: [1, 3, 6, 5])
        #expect(summary == ["Conv": 1], "\(summary)")
        let y = try #require(try model.run(x)["y"])
        let g = Conv2DGeometry(kernelH: 3, kernelW: 3, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1)
        let conv = referenceConv2d(input: x.data, batch: 1, channels: 3, height: 6, width: 5, weight: weight.data, outChannels: 4,
                                   bias: nil, groups: 1, geometry: g, activation: .relu)
        #expect(y.data.count == conv.count)
        for (got, c) in zip(y.data, conv) { #expect(abs(got - (c * 0.5 + 2 - 1)) < 1e-5) }
    }

    /// `2 − relu(conv)` is not an affine of the form y·s + b with the conv first: left alone.
    @Test func subtractionFromAConstantIsNotFused() throws {
        let nodes = [
            IRNode(op: "Conv", name: "c", inputs: ["x", "w"], outputs: ["c"], attributes: [:]),
            IRNode(op: "Relu", name: "r", inputs: ["c"], outputs: ["r"], attributes: [:]),
            IRNode(op: "Sub", name: "s", inputs: ["two", "r"], outputs: ["y"], attributes: [:]),
        ]
        let graph = IRGraph(nodes: nodes, constants: ["w": .float(Tensor(shape: [2, 1, 1, 1], data: [1, -1])),
                                                      "two": .float(Tensor(shape: [], data: [2]))],
                            inputs: [.init(name: "x", dims: [1, 1, 2, 2])], outputs: ["y"], metadata: [:], opset: 13)
        let model = try InferenceModel(graph: graph)
        #expect(try model.planSummary(for: [1, 1, 2, 2])["Sub"] == 1)
        let y = try #require(try model.run(Tensor(shape: [1, 1, 2, 2], data: [1, -2, 3, -4]))["y"])
        #expect(y.data == [1, 2, -1, 2, 2, 0, 2, -2])
    }
}

@Suite struct PackedLinearStepTests {
    /// Gemm (weights as given or transposed, with a bias row) and MatMul on a rank-3 input
    /// with constant weights become packed linear steps, with the same result as the generic
    /// operator; a Gemm with alpha ≠ 1 stays generic.
    @Test(arguments: [("Gemm", 0, true), ("Gemm", 1, true), ("Gemm", 1, false), ("MatMul", 0, false)])
    func constantWeightsRunPacked(_ t: (String, Int, Bool)) throws {
        let (op, transB, withBias) = t
        let k = 37, n = 21
        let inputShape = op == "MatMul" ? [2, 3, k] : [5, k]
        let weight = Tensor(shape: transB == 1 ? [n, k] : [k, n], data: (0..<(k * n)).map { Float(($0 * 31) % 23) / 11 - 1 })
        let bias = Tensor(shape: [n], data: (0..<n).map { Float($0) / 7 })
        let x = Tensor(shape: inputShape, data: (0..<inputShape.reduce(1, *)).map { Float(($0 * 17) % 13) / 6 - 1 })
        let inputs = ["x", "w"] + (withBias ? ["b"] : [])
        func graph(alpha: Float) -> IRGraph {
            let attributes: [String: IRAttribute] = op == "Gemm" ? ["transB": .int(Int64(transB)), "alpha": .float(alpha)] : [:]
            return IRGraph(nodes: [IRNode(op: op, name: "g", inputs: inputs, outputs: ["y"], attributes: attributes)],
                           constants: ["w": .float(weight), "b": .float(bias)], inputs: [.init(name: "x", dims: [nil] + inputShape.dropFirst().map { $0 })],
                           outputs: ["y"], metadata: [:], opset: 13)
        }
        let node = try #require(graph(alpha: 1).nodes.first)
        let expected = try Operators.evaluate(node, [.float(x), .float(weight)] + (withBias ? [.float(bias)] : []))[0].asFloat
        let model = try InferenceModel(graph: graph(alpha: 1))
        // Without AVX2 the packed kernel does not exist and the step stays generic.
        let packed = PackedLinear(weight: [1], outputs: 1, inputs: 1, bias: nil) != nil
        #expect(try model.planSummary(for: inputShape) == [packed ? "Gemm(packed)" : op: 1])
        let y = try #require(try model.run(x)["y"])
        #expect(y.shape == expected.shape)
        for (got, want) in zip(y.data, expected.data) { #expect(abs(got - want) < 1e-4) }
        if op == "Gemm" {
            #expect(try InferenceModel(graph: graph(alpha: 2)).planSummary(for: inputShape) == ["Gemm": 1])
        }
    }
}
