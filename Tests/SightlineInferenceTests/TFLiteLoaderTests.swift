import Foundation
import Testing
import SightlineCore
@testable import SightlineInference

/// The TFLite loader on a model written by hand (TinyTFLite), checked against the same network
/// in NHWC loops, and then damaged: every truncation and thousands of corruptions must load and
/// run or fail with a ModelError, never crash. The MediaPipe files themselves are checked against
/// LiteRT in SightlineModelsTests.
@Suite struct TFLiteLoaderTests {
    let input = Tensor(shape: TinyTFLite.inputShape, data: (0..<50).map { Float(($0 * 11) % 17) / 17 - 0.3 })

    @Test func tinyModelMatchesTheNHWCReference() throws {
        let graph = try TFLiteLoader.load(bytes: TinyTFLite.model())
        #expect(graph.inputs.map(\.name) == ["input"] && graph.outputs == ["output"])
        #expect(graph.metadata["description"] == "tiny")
        let model = try InferenceModel(graph: graph)
        let y = try #require(try model.run(input)["output"])
        #expect(y.shape == [1, 27])
        let expected = TinyTFLite.reference(input.data)
        #expect(normalizedMSE(y.data, expected) < 1e-10, "\(y.data) vs \(expected)")
        // DEQUANTIZE left no step: the float16 filter was widened at load.
        #expect(!graph.nodes.contains { $0.op == "Dequantize" })
    }

    @Test func corruptedFilesFailCleanly() throws {
        let good = TinyTFLite.model()
        var outcomes = (loaded: 0, rejected: 0)
        func attempt(_ bytes: [UInt8]) {
            do {
                let model = try InferenceModel(graph: try TFLiteLoader.load(bytes: bytes))
                _ = try model.run(input)
                outcomes.loaded += 1
            } catch is ModelError {
                outcomes.rejected += 1
            } catch {
                Issue.record("unexpected error type: \(error)")
            }
        }
        for cut in 0..<good.count { attempt(Array(good.prefix(cut))) }
        var seed: UInt64 = 977
        func next() -> Int {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Int(seed >> 33)
        }
        for _ in 0..<20000 {
            var bytes = good
            for _ in 0..<(1 + next() % 4) {
                let i = next() % bytes.count
                switch next() % 4 {
                case 0: bytes[i] = UInt8(truncatingIfNeeded: next())
                case 1: bytes[i] ^= UInt8(1 << (next() % 8))
                case 2: bytes[i] = 0xff  // large counts and offsets
                default: bytes.insert(UInt8(truncatingIfNeeded: next()), at: i)
                }
            }
            attempt(bytes)
        }
        #expect(outcomes.rejected > 1000)
        #expect(outcomes.loaded > 0)
    }

    @Test func anUnknownOperatorIsNamed() throws {
        var bytes = TinyTFLite.model()
        // The ADD opcode table holds deprecated code 0 and builtin code 0; make the builtin 99.
        let tiny = try FlatBuffer(bytes).root(identifier: "TFL3")
        let add = try tiny.tables(1)[4]
        let at = try #require(try add.field(3))
        bytes[at] = 99
        #expect {
            _ = try TFLiteLoader.load(bytes: bytes)
        } throws: { error in
            "\(error)".contains("TFLite builtin 99")
        }
    }

    @Test func hostileHeadersAreRefused() throws {
        var wrongIdentifier = TinyTFLite.model()
        wrongIdentifier[4] = UInt8(ascii: "X")
        #expect(throws: ModelError.self) { try TFLiteLoader.load(bytes: wrongIdentifier) }
        #expect(throws: ModelError.self) { try TFLiteLoader.load(bytes: []) }
        #expect(throws: ModelError.self) { try TFLiteLoader.load(bytes: Array(repeating: 0xff, count: 64)) }

        // A vector claiming 2³¹ elements is refused before anything is allocated.
        var huge = TinyTFLite.model()
        let model = try FlatBuffer(huge).root(identifier: "TFL3")
        let codes = try #require(try model.field(1))
        let vector = codes + Int(try FlatBuffer(huge).uint32(at: codes))
        huge.replaceSubrange(vector..<(vector + 4), with: [0, 0, 0, 0x80])
        #expect {
            _ = try TFLiteLoader.load(bytes: huge)
        } throws: { error in
            "\(error)".contains("runs past the end of the file")
        }

        // Schema version 4 is not what we read.
        var version = TinyTFLite.model()
        let at = try #require(try FlatBuffer(version).root(identifier: "TFL3").field(0))
        version[at] = 4
        #expect {
            _ = try TFLiteLoader.load(bytes: version)
        } throws: { error in
            "\(error)".contains("schema version 4")
        }
    }
}
