import Testing
import SightlineCore
@testable import SightlineInference

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
