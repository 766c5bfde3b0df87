import Foundation
import Testing
import SightlineCore
import SightlineInference
@testable import SightlineModels

/// The three PP-OCR graphs on our engine agree with onnxruntime's raw outputs on the same
/// inputs (Scripts/reference/ocr_raw_reference.py).
@Suite(.serialized) struct OCRRawTests {
    struct Reference: Decodable {
        var input: [Int]
        var shape: [Int]
        var sum: Double
        var sq: Double
        var picks: [[Double]]
    }

    static func pattern(_ shape: [Int], _ name: String) -> Tensor {
        let n = shape.reduce(1, *)
        if name == "det" {
            let w = shape[3]
            return Tensor(shape: shape, data: (0..<n).map { i in
                let row = (i / w) % shape[2], col = i % w
                let ink = (row / 8) % 3 == 1 && (col / 3) % 4 != 0 && col > 16 && col < w - 16
                return ink ? -0.9 : 0.9
            })
        }
        return Tensor(shape: shape, data: (0..<n).map { Float(($0 * 7919) % 255) / 255 - 0.5 })
    }

    @Test(arguments: ["det", "rec", "cls"])
    func agreesWithOnnxRuntime(model name: String) throws {
        let store = ModelStore()
        try store.fetch(ModelZoo.ppOCR)
        let url = try #require(Bundle.module.url(forResource: "ocr-raw-onnxruntime", withExtension: "json", subdirectory: "Fixtures"))
        let reference = try #require(try JSONDecoder().decode([String: Reference].self, from: Data(contentsOf: url))[name])
        let path = switch name {
        case "det": try store.verify(ModelZoo.ppOCR)
        case "rec": try store.verify(ModelZoo.ppOCR, companion: ModelZoo.ppOCR.companions[0])
        default: try store.verify(ModelZoo.ppOCR, companion: ModelZoo.ppOCR.companions[1])
        }
        let model = try InferenceModel.loadONNX(path: path, threads: 2)
        let output = try #require(try model.run(Self.pattern(reference.input, name)).values.first)
        #expect(output.shape == reference.shape)
        let sum = output.data.reduce(0.0) { $0 + Double($1) }
        let sq = output.data.reduce(0.0) { $0 + Double($1) * Double($1) }
        #expect(abs(sq - reference.sq) / reference.sq < 1e-4, "\(name) energy \(sq) vs \(reference.sq)")
        #expect(abs(sum - reference.sum) <= 1e-4 * max(abs(reference.sum), 1), "\(name) sum \(sum) vs \(reference.sum)")
        for pick in reference.picks {
            let got = Double(output.data[Int(pick[0])])
            #expect(abs(got - pick[1]) <= 1e-4 * max(abs(pick[1]), 1e-2), "\(name)[\(Int(pick[0]))] \(got) vs \(pick[1])")
        }
    }
}

@Suite struct OCRPlanTests {
    @Test func recogniserAttentionAndLayerNormAreFused() throws {
        let store = ModelStore()
        try store.fetch(ModelZoo.ppOCR)
        let model = try InferenceModel.loadONNX(path: try store.verify(ModelZoo.ppOCR, companion: ModelZoo.ppOCR.companions[0]))
        let summary = try model.planSummary(for: [1, 3, 48, 320])
        // Two SVTR attention blocks; the remaining Softmax is the output over the charset.
        #expect(summary["Attention(fused)"] == 2, "\(summary)")
        #expect(summary["Softmax"] == 1)
        #expect((summary["LayerNorm(fused)"] ?? 0) >= 4, "\(summary)")
        #expect(summary["Sqrt"] == nil || summary["Sqrt"]! <= 1)
        // 28 learnable affine blocks (scalar Mul then Add after a hard-swish) run inside their
        // convolutions: 47 Mul and 43 Add steps before, the rest are SE gates and residuals.
        #expect((summary["Mul"] ?? 0) <= 19 && (summary["Add"] ?? 0) <= 15, "\(summary)")
    }

    @Test func detectorHardSwishIsFusedIntoItsConvolutions() throws {
        let store = ModelStore()
        try store.fetch(ModelZoo.ppOCR)
        let model = try InferenceModel.loadONNX(path: try store.verify(ModelZoo.ppOCR))
        let summary = try model.planSummary(for: [1, 3, 320, 320])
        // x · Clip(x + 3, 0, 6) / 6 after a convolution, 24 times in PP-LCNet: now the conv's activation.
        #expect(summary["Clip"] == nil && summary["Div"] == nil, "\(summary)")
    }
}
