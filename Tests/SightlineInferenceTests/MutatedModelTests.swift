import Foundation
import Testing
import SightlineCore
@testable import SightlineInference

/// Writes a small ONNX model with a minimal protobuf encoder, so tests can corrupt it.
enum TinyOnnx {
    static func varint(_ v: UInt64) -> [UInt8] {
        var v = v, out: [UInt8] = []
        repeat {
            var byte = UInt8(v & 0x7f)
            v >>= 7
            if v != 0 { byte |= 0x80 }
            out.append(byte)
        } while v != 0
        return out
    }
    static func field(_ number: Int, _ bytes: [UInt8]) -> [UInt8] { varint(UInt64(number << 3 | 2)) + varint(UInt64(bytes.count)) + bytes }
    static func field(_ number: Int, int value: Int64) -> [UInt8] { varint(UInt64(number << 3)) + varint(UInt64(bitPattern: value)) }
    static func string(_ number: Int, _ s: String) -> [UInt8] { field(number, Array(s.utf8)) }

    static func tensor(_ name: String, _ dims: [Int], _ values: [Float]) -> [UInt8] {
        var raw: [UInt8] = []
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { raw += $0 } }
        return dims.flatMap { field(1, int: Int64($0)) } + field(2, int: 1) + string(8, name) + field(9, raw)
    }

    static func ints(_ name: String, _ values: [Int]) -> [UInt8] {
        string(1, name) + field(8, values.flatMap { varint(UInt64($0)) }) + field(20, int: 7)
    }

    static func node(_ op: String, _ inputs: [String], _ outputs: [String], _ attributes: [[UInt8]] = []) -> [UInt8] {
        inputs.flatMap { string(1, $0) } + outputs.flatMap { string(2, $0) } + string(3, op + "_" + outputs[0]) + string(4, op)
            + attributes.flatMap { field(5, $0) }
    }

    static func valueInfo(_ name: String, _ dims: [Int]) -> [UInt8] {
        let shape = dims.flatMap { field(1, field(1, int: Int64($0))) }
        return string(1, name) + field(2, field(1, field(1, int: 1) + field(2, shape)))
    }

    /// x[1,3,8,8] → Conv(4 filters, 3×3, pad 1) → Relu → GlobalAveragePool → Flatten → MatMul[4,2] → Softmax.
    static func model() -> [UInt8] {
        let w = (0..<108).map { Float(($0 * 37) % 11) / 11 - 0.5 }
        let b: [Float] = [0.1, -0.2, 0.3, 0]
        let w2: [Float] = [1, -1, 0.5, 0.25, -0.75, 2, 0, 1]
        let graph = field(1, node("Conv", ["x", "w", "b"], ["c"], [ints("pads", [1, 1, 1, 1]), ints("kernel_shape", [3, 3])]))
            + field(1, node("Relu", ["c"], ["r"]))
            + field(1, node("GlobalAveragePool", ["r"], ["g"]))
            + field(1, node("Flatten", ["g"], ["f"]))
            + field(1, node("MatMul", ["f", "w2"], ["m"]))
            + field(1, node("Softmax", ["m"], ["y"]))
            + string(2, "tiny")
            + field(5, tensor("w", [4, 3, 3, 3], w)) + field(5, tensor("b", [4], b)) + field(5, tensor("w2", [4, 2], w2))
            + field(11, valueInfo("x", [1, 3, 8, 8])) + field(12, valueInfo("y", [1, 2]))
        return field(1, int: 8) + field(8, string(1, "") + field(2, int: 13)) + field(7, graph)
    }
}

@Suite struct MutatedModelTests {
    let input = Tensor(shape: [1, 3, 8, 8], data: (0..<192).map { Float($0 % 17) / 17 })

    @Test func tinyModelRunsAndMatchesAHandComputation() throws {
        let model = try InferenceModel(graph: try OnnxLoader.load(data: Data(TinyOnnx.model())))
        let y = try #require(try model.run(input)["y"])
        #expect(y.shape == [1, 2])
        #expect(abs(y.data[0] + y.data[1] - 1) < 1e-6)
        // The same network, op by op, with the unoptimised reference operators.
        var reference: [String: IRValue] = model.graph.constants
        reference["x"] = .float(input)
        for node in model.graph.nodes {
            let outputs = try Operators.evaluate(node, node.inputs.map { reference[$0] })
            for (name, value) in zip(node.outputs, outputs) { reference[name] = value }
        }
        #expect(normalizedMSE(y.data, try #require(reference["y"]).asFloat.data) < 1e-12)
    }

    /// Every truncation and a few thousand corruptions: each either loads and runs, or fails
    /// with a ModelError. A crash would end the test process.
    /// A file of 320 kB whose two constants ([40000, 1] and [1, 40000]) broadcast to 1.6
    /// billion values: planning folded them into a 6.4 GB allocation and the process aborted.
    /// Every output sized by the file's contents is capped; this one is refused by name.
    @Test func aBroadcastOfTwoSmallConstantsCannotAskForGigabytes() throws {
        let n = 40_000
        let column = TinyOnnx.tensor("column", [n, 1], [Float](repeating: 1, count: n))
        let row = TinyOnnx.tensor("row", [1, n], [Float](repeating: 2, count: n))
        let graph = TinyOnnx.field(1, TinyOnnx.node("Add", ["column", "row"], ["big"]))
            + TinyOnnx.field(1, TinyOnnx.node("Add", ["x", "big"], ["y"]))
            + TinyOnnx.string(2, "broadcast-bomb")
            + TinyOnnx.field(5, column) + TinyOnnx.field(5, row)
            + TinyOnnx.field(11, TinyOnnx.valueInfo("x", [1])) + TinyOnnx.field(12, TinyOnnx.valueInfo("y", [n, n]))
        let file = TinyOnnx.field(1, int: 8) + TinyOnnx.field(8, TinyOnnx.string(1, "") + TinyOnnx.field(2, int: 13)) + TinyOnnx.field(7, graph)
        let model = try InferenceModel(graph: try OnnxLoader.load(data: Data(file)))
        do {
            _ = try model.run(Tensor(zeros: [1]))
            Issue.record("a 1.6-billion-value broadcast was planned")
        } catch let error as ModelError {
            #expect(error.description.contains("too large") && error.description.contains("Add"), "\(error)")
        }
    }

    @Test func corruptedFilesFailCleanly() throws {
        let good = TinyOnnx.model()
        var outcomes = (loaded: 0, rejected: 0)
        func attempt(_ bytes: [UInt8]) {
            do {
                let model = try InferenceModel(graph: try OnnxLoader.load(data: Data(bytes)))
                _ = try model.run(input)
                outcomes.loaded += 1
            } catch is ModelError {
                outcomes.rejected += 1
            } catch {
                Issue.record("unexpected error type: \(error)")
            }
        }
        for cut in 0..<good.count { attempt(Array(good.prefix(cut))) }
        var seed: UInt64 = 12345
        func next() -> Int {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Int(seed >> 33)
        }
        for _ in 0..<30000 {
            var bytes = good
            for _ in 0..<(1 + next() % 4) {
                let i = next() % bytes.count
                switch next() % 3 {
                case 0: bytes[i] = UInt8(truncatingIfNeeded: next())
                case 1: bytes[i] ^= UInt8(1 << (next() % 8))
                default: bytes.insert(UInt8(truncatingIfNeeded: next()), at: i)
                }
            }
            attempt(bytes)
        }
        #expect(outcomes.rejected > 1000)
        #expect(outcomes.loaded > 0)
    }

    @Test func unsupportedOperatorIsNamed() throws {
        var bytes = TinyOnnx.model()
        // Rename Softmax to an operator nobody implements (same length keeps the framing).
        let from = Array("Softmax".utf8), to = Array("Sofmaxx".utf8)
        if let at = (0...(bytes.count - from.count)).last(where: { Array(bytes[$0..<($0 + from.count)]) == from }) {
            bytes.replaceSubrange(at..<(at + from.count), with: to)
        }
        do {
            _ = try InferenceModel(graph: try OnnxLoader.load(data: Data(bytes)))
            Issue.record("accepted an unknown operator")
        } catch let error as ModelError {
            #expect(error.description.contains("unsupported operator 'Sofmaxx'"))
        }
    }

    @Test func garbageIsMalformed() {
        #expect(throws: ModelError.self) { try OnnxLoader.load(data: Data((0..<500).map { UInt8(truncatingIfNeeded: $0 * 7919) })) }
        #expect(throws: ModelError.self) { try OnnxLoader.load(data: Data()) }
    }
}
