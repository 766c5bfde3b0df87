import Foundation
import SightlineCore
import SightlineGraph
import SightlineInference
import SightlineNodes

/// What the fuzzers feed hostile bytes to: every parser of a file a user might be handed.
/// Each call must end in a result or an error, never a crash, a hang or an allocation out of
/// proportion to the input. The libFuzzer harness (`sightline-fuzz`, built by Scripts/fuzz)
/// and the regression test (FuzzRegressionTests, every committed seed and crasher) both come
/// through here.
public enum FuzzTarget: String, CaseIterable, Sendable {
    case onnx, tflite, pickle, safetensors, pipeline, link

    public func run(_ bytes: [UInt8]) {
        switch self {
        case .onnx:
            guard let graph = try? OnnxLoader.load(data: Data(bytes)) else { return }
            Self.plan(graph)
        case .tflite:
            guard let graph = try? TFLiteLoader.load(bytes: bytes) else { return }
            Self.plan(graph)
        case .pickle:
            _ = try? TorchLegacyLoader.load(data: Data(bytes))
        case .safetensors:
            _ = try? SafetensorsLoader.load(data: Data(bytes))
        case .pipeline:
            guard let text = String(bytes: bytes, encoding: .utf8) else { return }
            let (spec, _) = PipelineParser.parse(text: text, file: "fuzz.yaml")
            if let spec { _ = PipelineValidator.validate(spec, registry: BuiltinNodes.registry) }
        case .link:
            // Edge-link messages as a core receives them off the network, in order: each
            // prefixed by its 4-byte big-endian length, frames rebuilt on one canvas per source.
            var rebuilder = FrameRebuilder(maxPixels: 1 << 20)
            var offset = 0
            while offset + 4 <= bytes.count {
                let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
                offset += 4
                guard length <= bytes.count - offset else { return }
                guard let message = try? LinkCodec.decode(Data(bytes[offset..<(offset + length)])) else { offset += length; continue }
                offset += length
                switch message.header.kind {
                case .record: _ = try? LinkCodec.record(of: message)
                case .frame: _ = try? rebuilder.frame(from: message)
                default: break
                }
            }
        }
    }

    /// A model that loads is also planned and run once on zeros at its declared input shape
    /// (when that is small): shapes read from the file reach the planner and kernels there.
    private static func plan(_ graph: IRGraph) {
        guard let input = graph.inputs.first, let model = try? InferenceModel(graph: graph) else { return }
        let shape = input.dims.map { dim in dim.map { $0 > 0 ? $0 : 1 } ?? 1 }
        guard !shape.isEmpty, shape.count <= 6, shape.allSatisfy({ $0 <= 4096 }),
              shape.reduce(1, { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }) <= 1 << 20 else { return }
        _ = try? model.run(Tensor(zeros: shape))
    }
}
