import Foundation
import SightlineKernels
import Testing
import SightlineCore
@testable import SightlineInference
@testable import SightlineModels
import SightlineTestSupport

/// EfficientNet-Lite0 built from the .pth against onnxruntime running an ONNX export of the same
/// weights (Scripts/reference/efficientnet_reference.py wrote the fixture).
@Suite(.serialized) struct EfficientNetTests {
    struct Reference: Decodable {
        struct Output: Decodable {
            var logits_top5: [[Double]]
            var logits_sum: Double
            var logits_sq: Double
            var features_head: [Double]
            var features_sum: Double
            var features_sq: Double
        }
        var outputs: [String: Output]
    }

    static func classifier() throws -> EfficientNetLite0 {
        let store = ModelStore()
        try store.fetch(ModelZoo.efficientNetLite0)
        return try EfficientNetLite0(store: store, threads: 2)
    }

    @Test func matchesOnnxRuntimeOnRealPhotos() throws {
        let model = try Self.classifier()
        let url = try #require(Bundle.module.url(forResource: "efficientnet-lite0-onnxruntime", withExtension: "json", subdirectory: "Fixtures"))
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
        let photos = try SamplePhotos.all()
        let names = reference.outputs.keys.sorted()
        let frames = try names.map { try OpenNSFWTests.decode(try #require(photos[$0])) }
        let input = EfficientNetLite0.preprocessing.tensor(for: frames)
        let outputs = try model.model.run(input)
        let logits = try #require(outputs[EfficientNetLiteBuilder.logitsName])
        let features = try #require(outputs[EfficientNetLiteBuilder.featuresName])
        #expect(logits.shape == [names.count, 1000])
        #expect(features.shape == [names.count, 1280])
        for (i, name) in names.enumerated() {
            let want = try #require(reference.outputs[name])
            let row = Array(logits.data[(i * 1000)..<((i + 1) * 1000)])
            let feature = Array(features.data[(i * 1280)..<((i + 1) * 1280)])
            let order = row.enumerated().sorted { $0.element > $1.element }.prefix(5).map(\.offset)
            #expect(order == want.logits_top5.map { Int($0[0]) }, "\(name) top-5")
            for pair in want.logits_top5 {
                let got = Double(row[Int(pair[0])])
                #expect(abs(got - pair[1]) <= 1e-4 * max(abs(pair[1]), 1), "\(name) logit \(Int(pair[0])): \(got) vs \(pair[1])")
            }
            let sq = row.reduce(0.0) { $0 + Double($1) * Double($1) }
            #expect(abs(sq - want.logits_sq) / want.logits_sq < 1e-4, "\(name) logits energy")
            for (j, value) in want.features_head.enumerated() {
                #expect(abs(Double(feature[j]) - value) <= 1e-4 * max(abs(value), 0.1), "\(name) feature \(j)")
            }
            let fsq = feature.reduce(0.0) { $0 + Double($1) * Double($1) }
            #expect(abs(fsq - want.features_sq) / want.features_sq < 1e-4, "\(name) feature energy")
        }
    }

    @Test func labelsMakeSenseOnRealPhotos() throws {
        let model = try Self.classifier()
        let photos = try SamplePhotos.all()
        let expectations: [String: Set<String>] = [
            "chelsea.png": ["Egyptian cat", "tabby", "tiger cat"],
            "coffee.png": ["espresso", "cup", "coffee mug"],
            "motorcycle_left.png": ["moped", "motor scooter", "crash helmet"],
        ]
        for (name, accepted) in expectations {
            let frame = try OpenNSFWTests.decode(try #require(photos[name]))
            let top = try model.classify([frame])[0].top(1)[0]
            #expect(accepted.contains(top.label), "\(name): \(top.label)")
        }
        #expect(ImageNetLabels.names.count == 1000)
        #expect(ImageNetLabels.names[285] == "Egyptian cat")
    }

    @Test func planFoldsEveryBatchNormAndActivation() throws {
        let summary = try Self.classifier().model.planSummary(for: [1, 3, 224, 224])
        #expect(summary["BatchNormalization"] == nil)
        #expect(summary["Clip"] == nil)
        // Stem, 2 + 15 × 3 in the blocks, head; where the fused kernel runs, each block's expand
        // and depthwise convolutions are one step (15 blocks expand).
        // The 9 residual Adds run inside the projection convolutions before them.
        let fused = summary["Conv+DepthwiseConv(fused)"] ?? 0, joined = summary["Conv+Add(fused)"] ?? 0
        #expect((summary["Conv"] ?? 0) + joined + 2 * fused == 49, "\(summary)")
        #expect(joined == 9 && summary["Add"] == nil, "\(summary)")
        if ExpandDepthwise.applies(expandedChannels: 96, height: 112, width: 112, depthwise: Conv2DGeometry(kernelH: 3, kernelW: 3)) {
            #expect(fused == 15, "\(summary)")
        }
    }
}

/// The restricted unpickler refuses what a state_dict never needs.
@Suite struct TorchLoaderTests {
    @Test func hostilePickleIsRefused() {
        // torch.save-style header, then a pickle calling os.system.
        var bytes: [UInt8] = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]
        bytes += [0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e]
        bytes += [0x80, 0x02, 0x7d, 0x2e]
        bytes += [0x80, 0x02] + Array("cos\nsystem\n".utf8) + [0x58, 2, 0, 0, 0] + Array("ls".utf8) + [0x85, 0x52, 0x2e]
        do {
            _ = try TorchLegacyLoader.load(data: Data(bytes))
            Issue.record("hostile pickle accepted")
        } catch let error as ModelError {
            #expect(error.description.contains("os.system"))
        } catch {
            Issue.record("\(error)")
        }
    }

    /// A minimal legacy checkpoint, written opcode by opcode: one FloatStorage of `values` and
    /// one tensor "w" viewing it with `size` and `stride`.
    static func checkpoint(size: [Int32], stride: [Int32], values: [Float]) -> Data {
        func text(_ s: String) -> [UInt8] { [0x58] + withUnsafeBytes(of: UInt32(s.utf8.count).littleEndian, Array.init) + Array(s.utf8) }
        func int(_ v: Int32) -> [UInt8] { [0x4a] + withUnsafeBytes(of: v.littleEndian, Array.init) }
        func global(_ module: String, _ name: String) -> [UInt8] { [0x63] + Array("\(module)\n\(name)\n".utf8) }
        var b: [UInt8] = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]  // magic
        b += [0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e]  // 1001
        b += [0x80, 0x02, 0x7d, 0x2e]  // sys_info {}
        b += [0x80, 0x02] + global("collections", "OrderedDict") + [0x29, 0x52]  // OrderedDict()
        b += [0x28] + text("w") + global("torch._utils", "_rebuild_tensor_v2")
        b += [0x28, 0x28] + text("storage") + global("torch", "FloatStorage") + text("0") + text("cpu") + int(Int32(values.count)) + [0x74, 0x51]
        b += int(0) + [0x28] + size.flatMap(int) + [0x74] + [0x28] + stride.flatMap(int) + [0x74] + [0x74, 0x52]
        b += [0x75, 0x2e]  // SETITEMS, STOP
        b += [0x80, 0x02, 0x5d, 0x28] + text("0") + [0x65, 0x2e]  // ["0"]
        b += withUnsafeBytes(of: Int64(values.count).littleEndian, Array.init)
        for v in values { b += withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) }
        return Data(b)
    }

    @Test func aHandWrittenCheckpointLoads() throws {
        let tensors = try TorchLegacyLoader.load(data: Self.checkpoint(size: [2, 2], stride: [1, 2], values: [1, 2, 3, 4]))
        #expect(tensors["w"]?.shape == [2, 2] && tensors["w"]?.data == [1, 3, 2, 4])
    }

    /// Found under attack: sizes and strides that ask for gigabytes from a few bytes, overflow,
    /// or read past the storage are refused before anything is allocated.
    @Test(arguments: [
        ([1_000_000_000], [0]),                        // a zero stride: 4 GB of one value
        ([2_000_000_000, 2_000_000_000, 2_000_000_000], [1, 1, 1]),  // the element count overflows
        ([4], [1]),                                    // more elements than the storage holds
        ([1, 3], [1, 2_000_000_000]),                  // reads past the storage
    ] as [([Int32], [Int32])])
    func craftedSizesAreRefused(size: [Int32], stride: [Int32]) {
        #expect(throws: ModelError.self) { try TorchLegacyLoader.load(data: Self.checkpoint(size: size, stride: stride, values: [1])) }
    }

    /// A pickle of 200,000 nested tuples once overflowed the stack when freed.
    @Test func deepNestingIsRefused() {
        var bytes: [UInt8] = [0x80, 0x02, 0x29] + [UInt8](repeating: 0x85, count: 200_000) + [0x2e]
        bytes += [0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e]
        #expect(throws: ModelError.self) { try TorchLegacyLoader.load(data: Data(bytes)) }
        bytes.withUnsafeBytes { raw in
            var reader = PickleReader(bytes: raw)
            #expect(throws: ModelError.self) { _ = try reader.load() }
        }
    }

    @Test func notACheckpoint() {
        #expect(throws: ModelError.self) { try TorchLegacyLoader.load(data: Data("hello".utf8)) }
        #expect(throws: ModelError.self) { try TorchLegacyLoader.load(data: Data([0x50, 0x4b, 3, 4, 0, 0])) }
    }

    @Test func truncatedCheckpointsFailCleanly() throws {
        let store = ModelStore()
        try store.fetch(ModelZoo.efficientNetLite0)
        let data = try Data(contentsOf: URL(fileURLWithPath: try store.verify(ModelZoo.efficientNetLite0)))
        for cut in [0, 10, 30, 100, 1000, 20_000, 47_000, 47_200, 1_000_000, data.count - 1] {
            #expect(throws: ModelError.self, "cut at \(cut)") { try TorchLegacyLoader.load(data: data.prefix(cut)) }
        }
        var seed: UInt64 = 99
        // Corrupt the pickles (the first 47 kB); the storages are cut off, so every attempt
        // must end in an error, never a crash.
        for _ in 0..<300 {
            var bytes = data.prefix(60_000)
            seed = seed &* 6364136223846793005 &+ 1
            let i = Int(seed >> 33) % 47_000
            bytes[i] ^= UInt8(truncatingIfNeeded: seed >> 20) | 1
            #expect(throws: (any Error).self) { try TorchLegacyLoader.load(data: bytes) }
        }
    }
}
