import ArgumentParser
import Foundation
import SightlineCore
import SightlineInference
import SightlineKernels
import SightlineModels

/// `sightline bench infer`: our latency against onnxruntime's (PyPI, same model file, same
/// input shape, same thread count), measured in the same run.
struct BenchInferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer", abstract: "Model latency vs onnxruntime in the same run (ratio < 1 means faster than onnxruntime).")

    @Argument(help: "Model name (`sightline models list`), or pp-ocrv4-det / pp-ocrv4-rec / pp-ocrv4-cls.") var model: String

    static var referenceScripts: String { repositoryFile("Scripts/reference") }

    /// MiniLM: sentences per second, ours vs onnxruntime on an ONNX export of the same weights.
    func benchMiniLM() throws {
        let manifest = ModelZoo.miniLM
        let weights = try cache.store.verify(manifest)
        let scriptDir = Self.referenceScripts
        let onnxPath = NSTemporaryDirectory() + "sightline-minilm.onnx"
        let version = try referenceVersion("onnxruntime")
        KernelThreads.setBLASThreads(1)
        print("sightline bench infer \(model) against onnxruntime \(version) — \(tokens)-token sentences, \(runs) paired rounds (a block of \(PairedTimes.callsPerBlock) calls each side, alternating); ratio = median of the rounds' ours ÷ onnxruntime time, then its middle half, then fastest call ÷ fastest call")
        print(pad("threads", 9) + pad("batch", 7) + pad("ours sent/s", 13) + pad("onnxruntime sent/s", 20) + pad("ratio", 7) + pad("middle half", 13) + "fastest")
        for t in threads.split(separator: ",").compactMap({ Int($0) }) {
            KernelThreads.setBLASThreads(t)  // the BLAS fallback (no AVX2); the packed kernels take `threads`
            let embedder = try MiniLMEmbedder(store: cache.store, threads: t)
            for b in batch.split(separator: ",").compactMap({ Int($0) }) {
                // The same ids the script feeds onnxruntime: a deterministic pattern, [CLS] … [SEP].
                let ids: [[Int32]] = (0..<b).map { row in (0..<tokens).map { col in
                    col == 0 ? 101 : col == tokens - 1 ? 102 : Int32(((row * tokens + col) * 7919) % 20000 + 1000)
                } }
                for _ in 0..<2 { _ = try embedder.embed(tokenIDs: ids) }
                let reference = try ReferenceRunner(python: try findExecutable(python), script: scriptDir + "/minilm_onnx.py",
                                                    arguments: [weights, onnxPath, "--time", "\(b)", "\(tokens)", "\(t)", "paired"])
                let times = try PairedTimes.measure(rounds: runs, reference: reference) { _ = try embedder.embed(tokenIDs: ids) }
                print(pad("\(t)", 9) + pad("\(b)", 7) + pad(String(format: "%.1f", Double(b) * 1000 / times.oursMedian), 13)
                      + pad(String(format: "%.1f", Double(b) * 1000 / times.theirsMedian), 20) + pad(String(format: "%.2f", times.ratioMedian), 7)
                      + pad(times.ratioSpread, 13) + times.fastestRatio)
            }
        }
        KernelThreads.setBLASThreads(1)
    }
    @Option(help: "Comma-separated thread counts.") var threads: String = "1,2"
    @Option(help: "Comma-separated batch sizes.") var batch: String = "1,8"
    @Option(help: "Paired rounds per measurement: a block of \(PairedTimes.callsPerBlock) timed calls of ours and \(PairedTimes.callsPerBlock) of the reference's each, alternating which goes first (medians reported).") var runs: Int = 10
    @Option(help: "Python with onnxruntime installed.") var python: String = "python3"
    @Flag(help: "Also print where our time goes, per operator type (batch 1, first thread count).")
    var profile = false
    @Flag(help: "Also print every step's median time in plan order with its input shape (batch 1, first thread count).")
    var profileSteps = false
    @OptionGroup var cache: ModelCacheOption

    @Option(help: "MiniLM: tokens per sentence.") var tokens: Int = 32
    @Option(help: "pp-ocrv4-det: input WxH, multiples of 32 (on 720p frames the ocr node's full size is 960x544, its first look 640x352).")
    var detSize: String = "736x736"
    @Option(help: "OpenBLAS threads (default 1: Sightline splits work over Dispatch instead; set to compare who should own the cores).")
    var blasThreads: Int = 1
    @Flag(help: "Let OpenBLAS own the cores: our convolutions stay single-threaded, OpenBLAS gets --threads.")
    var blasOwnsCores = false

    /// The reference runtime's version, so runs on different days can be set side by side;
    /// a missing package is said in one line (the scripts would end in a Python traceback).
    func referenceVersion(_ reference: String) throws -> String {
        let (check, install) = reference == "litert"
            ? ("from ai_edge_litert.interpreter import Interpreter; import importlib.metadata as m; print(m.version('ai-edge-litert'))",
               "ai-edge-litert==2.3.0 numpy")
            : ("import onnxruntime, onnx; print(onnxruntime.__version__)", "onnxruntime onnx")
        let executable = try findExecutable(python)
        guard let output = try? runTool(executable, ["-c", check]) else {
            throw ValidationError("bench infer compares against \(reference) in \(python), which lacks it: \(python) -m pip install \(install)")
        }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func run() throws {
        if model == ModelZoo.miniLM.name {
            try benchMiniLM()
            return
        }
        let ocrPart = ModelCacheOption.ocrGraphs[model]
        let scriptDir = Self.referenceScripts
        var scriptPath = scriptDir + "/onnxruntime_latency.py"
        var reference = "onnxruntime"
        let graph: IRGraph
        let path: String
        let version = try referenceVersion(MediaPipeDetectors.Graph(rawValue: model) == nil ? "onnxruntime" : "litert")
        if let detector = MediaPipeDetectors.Graph(rawValue: model) {
            // A MediaPipe TFLite file: LiteRT (TensorFlow Lite's runtime, XNNPACK on) runs the same file.
            try cache.store.fetch(ModelZoo.mediapipe)
            path = try MediaPipeDetectors.path(detector, store: cache.store)
            graph = try TFLiteLoader.load(path: path)
            scriptPath = scriptDir + "/litert_latency.py"
            reference = "litert"
        } else if case let (manifest, weights) = try cache.verifiedFile(model), manifest == ModelZoo.efficientNetLite0 {
            // onnxruntime cannot read a .pth: it runs an ONNX export of the same weights.
            graph = try EfficientNetLiteBuilder.graph(stateDict: try TorchLegacyLoader.load(path: weights))
            path = NSTemporaryDirectory() + "sightline-efficientnet-lite0.onnx"
            _ = try runTool(try findExecutable(python), [scriptDir + "/efficientnet_reference.py", weights, path])
        } else {
            path = try cache.verifiedFile(model).1
            graph = try OnnxLoader.load(path: path)
        }
        let threadCounts = threads.split(separator: ",").compactMap { Int($0) }
        let batches = batch.split(separator: ",").compactMap { Int($0) }
        // Dynamic axes (batch, and EfficientNet's spatial size) take the model's usual 224.
        guard let size = FrameSize(parsing: detSize), let detWidth = size.width, let detHeight = size.height,
              detWidth % 32 == 0, detHeight % 32 == 0 else {
            throw ValidationError("--det-size needs WxH, both multiples of 32 (e.g. 640x352)")
        }
        let ocrShapes = [[1, 3, detHeight, detWidth], [1, 3, 48, 320], [1, 3, 48, 192]]
        let single = ocrPart.map { ocrShapes[$0] } ?? graph.inputs[0].dims.enumerated().map {
            $0.element ?? ($0.offset == 0 ? 1 : ($0.offset == 1 && graph.inputs[0].dims.count == 4 && graph.inputs[0].dims[1] == nil ? 3 : 224))
        }
        // Sightline owns the cores by default: convolutions split over Dispatch, OpenBLAS single-threaded.
        KernelThreads.setBLASThreads(blasThreads)
        print("sightline bench infer \(model) against \(reference) \(version) — \(runs) paired rounds (a block of \(PairedTimes.callsPerBlock) calls each side, alternating); ratio = median of the rounds' ours ÷ \(reference) time (≤ 1.0 is the target), then its middle half, then fastest call ÷ fastest call (steadier on a busy host)")
        print(pad("threads", 9) + pad("batch", 7) + pad("ours ms", 11) + pad("\(reference) ms", 16) + pad("ratio", 7) + pad("middle half", 13) + "fastest")
        for t in threadCounts {
            if blasOwnsCores { KernelThreads.setBLASThreads(t) }
            let inference = try InferenceModel(graph: graph, threads: blasOwnsCores ? 1 : t)
            for b in batches {
                let shape = [b] + single.dropFirst()
                var seed: UInt64 = 1
                let input = Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in
                    seed = seed &* 6364136223846793005 &+ 1
                    return Float(Int(seed >> 40) % 200) - 100
                })
                for _ in 0..<2 { _ = try inference.run(input) }
                let reference = try ReferenceRunner(python: try findExecutable(python), script: scriptPath,
                                                    arguments: [path, shape.map(String.init).joined(separator: ","), "\(t)", "paired"])
                let times = try PairedTimes.measure(rounds: runs, reference: reference) { _ = try inference.run(input) }
                if profile && b == batches.first && t == threadCounts.first {
                    let rows = try inference.profile(input)
                    let total = rows.reduce(0) { $0 + $1.milliseconds }
                    for row in rows {
                        print("    " + pad(row.op, 20) + pad(String(format: "%6.2f ms", row.milliseconds), 12)
                              + pad(String(format: "%4.1f%%", row.milliseconds / total * 100), 8) + "\(row.steps) steps")
                    }
                }
                if profileSteps && b == batches.first && t == threadCounts.first {
                    for row in try inference.stepProfile(input, runs: runs) {
                        print("    " + pad(String(format: "%7.3f ms", row.milliseconds), 12) + pad(row.step, 26) + "\(row.inputShape)")
                    }
                }
                print(pad("\(t)", 9) + pad("\(b)", 7) + pad(String(format: "%.1f", times.oursMedian), 11) + pad(String(format: "%.1f", times.theirsMedian), 16)
                      + pad(String(format: "%.2f", times.ratioMedian), 7) + pad(times.ratioSpread, 13) + times.fastestRatio)
            }
        }
    }
}
