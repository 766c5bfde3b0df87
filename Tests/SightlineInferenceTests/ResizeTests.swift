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
