import Foundation
import ArgumentParser
import SightlineInference
import SightlineModels

struct ModelsPlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plan", abstract: "Print a model's optimised execution plan for an input shape.")
    @Argument(help: "Model name: open-nsfw, efficientnet-lite0, pp-ocrv4-det / pp-ocrv4-rec / pp-ocrv4-cls, or face-full / face-short / person (TFLite).") var name: String
    @Option(help: "Input shape, comma-separated.") var shape: String = "1,224,224,3"
    @OptionGroup var cache: ModelCacheOption

    func run() throws {
        let model: InferenceModel
        if let detector = MediaPipeDetectors.Graph(rawValue: name) {
            try cache.store.fetch(ModelZoo.mediapipe)
            model = try InferenceModel(graph: try TFLiteLoader.load(path: try MediaPipeDetectors.path(detector, store: cache.store)))
        } else if name == ModelZoo.efficientNetLite0.name {
            // Built from its PyTorch checkpoint, not read from an ONNX file.
            model = try EfficientNetLite0(store: cache.store).model
        } else if name == ModelZoo.miniLM.name {
            throw ValidationError("\(name) runs as its own encoder (packed linear layers and fused attention), not as a planned graph: there is no plan to print")
        } else {
            model = try InferenceModel.loadONNX(path: try cache.verifiedFile(name).path)
        }
        let dims = shape.split(separator: ",").compactMap { Int($0) }
        for line in try model.planListing(for: dims) { print(line) }
        print("weights held by this plan (MB, float32):")
        for (form, elements) in try model.planWeightElements(for: dims) {
            print("  " + pad(form, 26) + String(format: "%8.1f", Double(elements) * 4 / 1_048_576))
        }
        let activations = try model.planActivationElements(for: dims)
        print("activations (MB, float32):")
        print("  " + pad("peak held at once", 26) + String(format: "%8.1f", Double(activations.peakLive) * 4 / 1_048_576))
        print("  " + pad(activations.arenaOn ? "arena block" : "arena block (if enabled)", 26) + String(format: "%8.1f", Double(activations.arena) * 4 / 1_048_576)
              + "  (\(activations.pooled) of \(activations.values) values pooled)")
    }
}
