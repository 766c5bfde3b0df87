import Foundation

/// Writes small FlatBuffers — enough of the format for a TFLite model — so tests can build a
/// model the loader has never seen and then damage it. Objects are laid out front to back:
/// a table's vtable, then the table, then what its fields point to (FlatBuffer offsets are
/// unsigned, so a referenced object must come later in the file).
indirect enum FlatValue {
    case int8(Int8)
    case uint8(UInt8)
    case int32(Int32)
    case uint32(UInt32)
    case float(Float)
    case string(String)
    /// A vector of scalars: its raw little-endian bytes, and the size of one element.
    case scalars([UInt8], elementSize: Int)
    case table([Int: FlatValue])
    case tables([FlatValue])

    static func int32s(_ values: [Int32]) -> FlatValue { .scalars(values.flatMap { le($0) }, elementSize: 4) }
    static func floats(_ values: [Float]) -> FlatValue { .scalars(values.flatMap { le($0.bitPattern) }, elementSize: 4) }
    static func bytes(_ values: [UInt8]) -> FlatValue { .scalars(values, elementSize: 1) }

    static func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }

    var inlineSize: Int {
        switch self {
        case .int8, .uint8: 1
        case .int32, .uint32, .float: 4
        case .string, .scalars, .table, .tables: 4  // an offset
        }
    }

}

struct FlatWriter {
    private(set) var bytes: [UInt8] = []

    /// A file: the root offset, the identifier, then the root table.
    static func file(identifier: String, root: FlatValue) -> [UInt8] {
        var writer = FlatWriter()
        writer.bytes = [0, 0, 0, 0] + Array(identifier.utf8)
        let position = writer.write(root)
        writer.patch(at: 0, to: position)
        return writer.bytes
    }

    private mutating func align(_ n: Int) {
        while bytes.count % n != 0 { bytes.append(0) }
    }

    private mutating func patch(at position: Int, to target: Int) {
        let offset = FlatValue.le(UInt32(target - position))
        bytes.replaceSubrange(position..<(position + 4), with: offset)
    }

    /// Writes a referenced object; returns where it starts (what an offset points at).
    private mutating func write(_ value: FlatValue) -> Int {
        switch value {
        case .string(let s):
            align(4)
            let start = bytes.count
            bytes += FlatValue.le(UInt32(s.utf8.count)) + Array(s.utf8) + [0]
            return start
        case .scalars(let raw, let size):
            // The elements (after the 4-byte count) aligned to their size.
            while (bytes.count + 4) % max(4, size) != 0 { bytes.append(0) }
            let start = bytes.count
            bytes += FlatValue.le(UInt32(raw.count / size)) + raw
            return start
        case .tables(let items):
            align(4)
            let start = bytes.count
            bytes += FlatValue.le(UInt32(items.count))
            let slots = items.indices.map { start + 4 + 4 * $0 }
            bytes += [UInt8](repeating: 0, count: 4 * items.count)
            for (slot, item) in zip(slots, items) { patch(at: slot, to: write(item)) }
            return start
        case .table(let fields):
            let count = (fields.keys.max() ?? -1) + 1
            // Field offsets within the table: after the 4-byte vtable offset, each aligned.
            var layout: [Int: Int] = [:]
            var size = 4
            for id in fields.keys.sorted() {
                guard let field = fields[id] else { continue }
                let n = field.inlineSize
                size = (size + n - 1) / n * n
                layout[id] = size
                size += n
            }
            align(2)
            let vtable = bytes.count
            bytes += FlatValue.le(UInt16(4 + 2 * count)) + FlatValue.le(UInt16(size))
            for id in 0..<count { bytes += FlatValue.le(UInt16(layout[id] ?? 0)) }
            align(4)
            let table = bytes.count
            bytes += FlatValue.le(Int32(table - vtable)) + [UInt8](repeating: 0, count: size - 4)
            var references: [(Int, FlatValue)] = []
            for (id, field) in fields {
                guard let at = layout[id].map({ table + $0 }) else { continue }
                let raw: [UInt8]
                switch field {
                case .int8(let v): raw = FlatValue.le(v)
                case .uint8(let v): raw = [v]
                case .int32(let v): raw = FlatValue.le(v)
                case .uint32(let v): raw = FlatValue.le(v)
                case .float(let v): raw = FlatValue.le(v.bitPattern)
                default:
                    references.append((at, field))
                    continue
                }
                bytes.replaceSubrange(at..<(at + raw.count), with: raw)
            }
            for (at, field) in references.sorted(by: { $0.0 < $1.0 }) { patch(at: at, to: write(field)) }
            return table
        case .int8, .uint8, .int32, .uint32, .float:
            preconditionFailure("a scalar is stored inline, in its table")
        }
    }
}

/// A tiny TFLite model that uses the loader's main paths: an NHWC PAD, a float16 filter
/// behind DEQUANTIZE, CONV_2D with a fused ReLU, a stride-2 SAME DEPTHWISE_CONV_2D, an ADD of a
/// broadcast constant, and a RESHAPE to the output.
///
///     input [1,5,5,2] → PAD(1,1 spatial) → CONV_2D 3×3 VALID (3 filters, ReLU) [1,5,5,3]
///       → DEPTHWISE 3×3 stride 2 SAME [1,3,3,3] → ADD [3] → RESHAPE [1,27]
enum TinyTFLite {
    static let inputShape = [1, 5, 5, 2]
    static let filter: [Float] = (0..<54).map { Float(($0 * 5) % 13 - 6) / 8 }  // OHWI [3,3,3,2], exact in float16
    static let bias: [Float] = [0.25, -0.5, 0]
    static let depthwise: [Float] = (0..<27).map { Float(($0 * 7) % 9 - 4) / 4 }  // 1HWC [1,3,3,3]
    static let offset: [Float] = [1, -1, 0.5]

    static func model() -> [UInt8] {
        func tensor(_ name: String, _ shape: [Int32], type: Int8 = 0, buffer: UInt32 = 0) -> FlatValue {
            .table([0: .int32s(shape), 1: .int8(type), 2: .uint32(buffer), 3: .string(name)])
        }
        func buffer(_ raw: [UInt8]) -> FlatValue { raw.isEmpty ? .table([:]) : .table([0: .bytes(raw)]) }
        func op(_ code: UInt32, _ inputs: [Int32], _ outputs: [Int32], options: [Int: FlatValue]? = nil, optionsType: UInt8 = 0) -> FlatValue {
            var fields: [Int: FlatValue] = [0: .uint32(code), 1: .int32s(inputs), 2: .int32s(outputs)]
            if let options {
                fields[3] = .uint8(optionsType)
                fields[4] = .table(options)
            }
            return .table(fields)
        }
        let half = filter.flatMap { FlatValue.le(Float16($0).bitPattern) }
        let tensors: [FlatValue] = [
            tensor("input", [1, 5, 5, 2]),
            tensor("pads", [4, 2], type: 2, buffer: 1),
            tensor("padded", [1, 7, 7, 2]),
            tensor("filter16", [3, 3, 3, 2], type: 1, buffer: 2),
            tensor("filter", [3, 3, 3, 2]),
            tensor("bias", [3], buffer: 3),
            tensor("conv", [1, 5, 5, 3]),
            tensor("dw_filter", [1, 3, 3, 3], buffer: 4),
            tensor("dw", [1, 3, 3, 3]),
            tensor("offset", [3], buffer: 5),
            tensor("sum", [1, 3, 3, 3]),
            tensor("new_shape", [2], type: 2, buffer: 6),
            tensor("output", [1, 27]),
        ]
        // Operator codes, in the order the operators index them: PAD 34, DEQUANTIZE 6,
        // CONV_2D 3, DEPTHWISE_CONV_2D 4, ADD 0, RESHAPE 22.
        let codes: [FlatValue] = [34, 6, 3, 4, 0, 22].map { .table([0: .int8(Int8($0)), 3: .int32($0)]) }
        let operators: [FlatValue] = [
            op(0, [0, 1], [2]),
            op(1, [3], [4]),
            // Conv2DOptions: padding VALID (1), stride 1 × 1, fused ReLU (1).
            op(2, [2, 4, 5], [6], options: [0: .int8(1), 1: .int32(1), 2: .int32(1), 3: .int8(1)], optionsType: 1),
            // DepthwiseConv2DOptions: padding SAME (0), stride 2 × 2, depth multiplier 1.
            op(3, [6, 7, -1], [8], options: [0: .int8(0), 1: .int32(2), 2: .int32(2), 3: .int32(1)], optionsType: 2),
            op(4, [8, 9], [10], options: [:], optionsType: 11),
            op(5, [10, 11], [12], options: [:], optionsType: 17),
        ]
        let buffers: [FlatValue] = [
            buffer([]),
            buffer([0, 0, 1, 1, 1, 1, 0, 0].flatMap { FlatValue.le(Int32($0)) }),
            buffer(half),
            buffer(bias.flatMap { FlatValue.le($0.bitPattern) }),
            buffer(depthwise.flatMap { FlatValue.le($0.bitPattern) }),
            buffer(offset.flatMap { FlatValue.le($0.bitPattern) }),
            buffer([1, 27].flatMap { FlatValue.le(Int32($0)) }),
        ]
        let subgraph: FlatValue = .table([0: .tables(tensors), 1: .int32s([0]), 2: .int32s([12]), 3: .tables(operators), 4: .string("main")])
        let model: FlatValue = .table([0: .uint32(3), 1: .tables(codes), 2: .tables([subgraph]), 3: .string("tiny"), 4: .tables(buffers)])
        return FlatWriter.file(identifier: "TFL3", root: model)
    }

    /// The same network written out in NHWC loops, for the loader's result to be checked against.
    static func reference(_ x: [Float]) -> [Float] {
        // PAD: one pixel of zeros around the 5×5 image.
        func input(_ y: Int, _ x0: Int, _ c: Int) -> Float {
            let (yy, xx) = (y - 1, x0 - 1)
            guard (0..<5).contains(yy), (0..<5).contains(xx) else { return 0 }
            return x[(yy * 5 + xx) * 2 + c]
        }
        var conv = [Float](repeating: 0, count: 75)
        for y in 0..<5 {
            for x0 in 0..<5 {
                for o in 0..<3 {
                    var sum = bias[o]
                    for ky in 0..<3 { for kx in 0..<3 { for c in 0..<2 { sum += filter[((o * 3 + ky) * 3 + kx) * 2 + c] * input(y + ky, x0 + kx, c) } } }
                    conv[(y * 5 + x0) * 3 + o] = max(0, sum)
                }
            }
        }
        // SAME, stride 2, 3×3 on 5×5: output 3×3, one pixel of padding at the top and left.
        var out = [Float](repeating: 0, count: 27)
        for y in 0..<3 {
            for x0 in 0..<3 {
                for c in 0..<3 {
                    var sum: Float = 0
                    for ky in 0..<3 {
                        for kx in 0..<3 {
                            let (iy, ix) = (y * 2 + ky - 1, x0 * 2 + kx - 1)
                            guard (0..<5).contains(iy), (0..<5).contains(ix) else { continue }
                            sum += depthwise[(ky * 3 + kx) * 3 + c] * conv[(iy * 5 + ix) * 3 + c]
                        }
                    }
                    out[(y * 3 + x0) * 3 + c] = sum + offset[c]
                }
            }
        }
        return out
    }
}
