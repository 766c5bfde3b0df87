import ArgumentParser
import SightlineInference
import SightlineModels

struct ModelsPlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plan", abstract: "Print a model's optimised execution plan for an input shape.")
    @Argument(help: "Model name.") var name: String
    @Option(help: "Input shape, comma-separated.") var shape: String = "1,224,224,3"
    @OptionGroup var cache: ModelCacheOption

    func run() throws {
        let manifest = try ModelZoo.manifest(named: name)
        let model = try InferenceModel.loadONNX(path: try cache.store.verify(manifest))
        for line in try model.planListing(for: shape.split(separator: ",").compactMap { Int($0) }) { print(line) }
    }
}
