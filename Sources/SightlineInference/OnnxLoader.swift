import Foundation
import SightlineCore

/// Reads an ONNX ModelProto into an `IRGraph` without generated code: the handful of messages
/// and fields a model needs, by field number (onnx.proto: ModelProto graph=7, opset_import=8,
/// metadata_props=14; GraphProto node=1, initializer=5, input=11, output=12; NodeProto input=1,
/// output=2, name=3, op_type=4, attribute=5, domain=7; AttributeProto name=1, f=2, i=3, s=4, t=5,
/// floats=7, ints=8; TensorProto dims=1, data_type=2, float_data=4, int32_data=5, int64_data=7,
/// name=8, raw_data=9, double_data=10, data_location=14).
///
/// Supported: the default ai.onnx domain, opsets 7–18; weights as initializers or Constant nodes;
/// float32/float16/double/int64/int32/bool/uint8/int8 tensors (floats become float32). External
/// data files are refused.
public enum OnnxLoader {
    public static let opsetRange = 7...18

    public static func load(path: String) throws -> IRGraph {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelError.missing("cannot read model file '\(path)'")
        }
        return try load(data: data)
    }

    public static func load(data: Data) throws -> IRGraph {
        try data.withUnsafeBytes { raw in
            var reader = ProtobufReader(raw)
            var graphRange: Range<Int>?
            var opset: Int?
            var metadata: [String: String] = [:]
            while !reader.isAtEnd {
                let (field, wire) = try reader.readTag()
                switch (field, wire) {
                case (7, .lengthDelimited): graphRange = try reader.readLengthDelimited()
                case (8, .lengthDelimited):
                    var sub = reader.reader(try reader.readLengthDelimited())
                    var domain = "", version: Int64 = 0
                    while !sub.isAtEnd {
                        let (f, w) = try sub.readTag()
                        if f == 1, w == .lengthDelimited { domain = sub.string(try sub.readLengthDelimited()) }
                        else if f == 2, w == .varint { version = Int64(bitPattern: try sub.readVarint()) }
                        else { try sub.skip(w) }
                    }
                    if domain.isEmpty || domain == "ai.onnx" { opset = Int(version) }
                case (14, .lengthDelimited):
                    var sub = reader.reader(try reader.readLengthDelimited())
                    var key = "", value = ""
                    while !sub.isAtEnd {
                        let (f, w) = try sub.readTag()
                        if f == 1, w == .lengthDelimited { key = sub.string(try sub.readLengthDelimited()) }
                        else if f == 2, w == .lengthDelimited { value = sub.string(try sub.readLengthDelimited()) }
                        else { try sub.skip(w) }
                    }
                    metadata[key] = value
                default:
                    try reader.skip(wire)
                }
            }
            guard let graphRange else { throw ModelError.malformed("no graph in the model") }
            guard let opset else { throw ModelError.malformed("no ai.onnx opset_import") }
            guard opsetRange.contains(opset) else {
                throw ModelError.unsupported("opset \(opset) (supported: \(opsetRange.lowerBound)–\(opsetRange.upperBound))")
            }
            var graph = try readGraph(reader.reader(graphRange))
            graph.metadata = metadata
            graph.opset = opset
            return graph
        }
    }

    private static func readGraph(_ r: ProtobufReader) throws -> IRGraph {
        var reader = r
        var nodes: [IRNode] = []
        var constants: [String: IRValue] = [:]
        var inputs: [IRGraph.Input] = []
        var outputs: [String] = []
        while !reader.isAtEnd {
            let (field, wire) = try reader.readTag()
            guard wire == .lengthDelimited else { try reader.skip(wire); continue }
            let range = try reader.readLengthDelimited()
            switch field {
            case 1: nodes.append(try readNode(reader.reader(range)))
            case 5:
                let (name, value) = try readTensor(reader.reader(range))
                constants[name] = value
            case 11: inputs.append(try readValueInfo(reader.reader(range)))
            case 12: outputs.append(try readValueInfo(reader.reader(range)).name)
            default: break
            }
        }
        // Declared inputs that are initializers are weights, not inputs (IR < 4 lists both).
        inputs.removeAll { constants[$0.name] != nil }
        // Constant nodes are constants.
        var rest: [IRNode] = []
        for node in nodes {
            if node.op == "Constant", let output = node.outputs.first {
                constants[output] = try constantValue(node)
            } else {
                rest.append(node)
            }
        }
        return IRGraph(nodes: rest, constants: constants, inputs: inputs, outputs: outputs, metadata: [:], opset: 0)
    }

    private static func constantValue(_ node: IRNode) throws -> IRValue {
        switch node.attributes["value"] ?? node.attributes["value_float"] ?? node.attributes["value_floats"]
            ?? node.attributes["value_int"] ?? node.attributes["value_ints"] {
        case .tensor(let v)?: return v
        case .float(let f)?: return .float(Tensor(shape: [], data: [f]))
        case .floats(let f)?: return .float(Tensor(shape: [f.count], data: f))
        case .int(let i)?: return .int64(shape: [], data: [i])
        case .ints(let i)?: return .int64(shape: [i.count], data: i)
        default: throw ModelError.unsupported("Constant node '\(node.name)' without a tensor, float or int value")
        }
    }

    private static func readNode(_ r: ProtobufReader) throws -> IRNode {
        var reader = r
        var node = IRNode(op: "", name: "", inputs: [], outputs: [], attributes: [:])
        var domain = ""
        while !reader.isAtEnd {
            let (field, wire) = try reader.readTag()
            guard wire == .lengthDelimited else { try reader.skip(wire); continue }
            let range = try reader.readLengthDelimited()
            switch field {
            case 1: node.inputs.append(reader.string(range))
            case 2: node.outputs.append(reader.string(range))
            case 3: node.name = reader.string(range)
            case 4: node.op = reader.string(range)
            case 5:
                let (name, value) = try readAttribute(reader.reader(range))
                if let value { node.attributes[name] = value }
            case 7: domain = reader.string(range)
            default: break
            }
        }
        guard !node.op.isEmpty else { throw ModelError.malformed("a node without op_type") }
        if !domain.isEmpty && domain != "ai.onnx" {
            throw ModelError.unsupportedOperator("\(domain).\(node.op)", node: node.name)
        }
        return node
    }

    private static func readAttribute(_ r: ProtobufReader) throws -> (String, IRAttribute?) {
        var reader = r
        var name = ""
        var value: IRAttribute?
        var ints: [Int64] = []
        var floats: [Float] = []
        while !reader.isAtEnd {
            let (field, wire) = try reader.readTag()
            switch (field, wire) {
            case (1, .lengthDelimited): name = reader.string(try reader.readLengthDelimited())
            case (2, .fixed32): value = .float(Float(bitPattern: try reader.readFixed32()))
            case (3, .varint): value = .int(Int64(bitPattern: try reader.readVarint()))
            case (4, .lengthDelimited): value = .string(reader.string(try reader.readLengthDelimited()))
            case (5, .lengthDelimited): value = .tensor(try readTensor(reader.reader(try reader.readLengthDelimited())).1)
            case (7, _): try reader.readFloats(wire, into: &floats)
            case (8, _): try reader.readInt64s(wire, into: &ints)
            default: try reader.skip(wire)
            }
        }
        if value == nil && !ints.isEmpty { value = .ints(ints) }
        if value == nil && !floats.isEmpty { value = .floats(floats) }
        if value == nil {
            // Empty repeated attributes (e.g. pads=[]) still mean "a list".
            value = .ints([])
        }
        return (name, value)
    }

    static func readTensor(_ r: ProtobufReader) throws -> (String, IRValue) {
        var reader = r
        var dims: [Int64] = []
        var dataType: Int64 = 0
        var name = ""
        var raw: Range<Int>?
        var floats: [Float] = []
        var int64s: [Int64] = []
        var int32s: [Int64] = []
        var doubles: [Double] = []
        var external = false
        while !reader.isAtEnd {
            let (field, wire) = try reader.readTag()
            switch (field, wire) {
            case (1, _): try reader.readInt64s(wire, into: &dims)
            case (2, .varint): dataType = Int64(bitPattern: try reader.readVarint())
            case (4, _): try reader.readFloats(wire, into: &floats)
            case (5, _): try reader.readInt64s(wire, into: &int32s)
            case (7, _): try reader.readInt64s(wire, into: &int64s)
            case (8, .lengthDelimited): name = reader.string(try reader.readLengthDelimited())
            case (9, .lengthDelimited): raw = try reader.readLengthDelimited()
            case (10, .lengthDelimited):
                var inner = reader.reader(try reader.readLengthDelimited())
                while !inner.isAtEnd { doubles.append(Double(bitPattern: try inner.readFixed64())) }
            case (14, .varint): external = try reader.readVarint() == 1
            default: try reader.skip(wire)
            }
        }
        if external { throw ModelError.unsupported("tensor '\(name)' keeps its data in an external file") }
        guard dims.allSatisfy({ $0 >= 0 && $0 < 1 << 31 }) else { throw ModelError.malformed("tensor '\(name)' has bad dims \(dims)") }
        let shape = dims.map { Int($0) }
        let (count, overflow) = shape.reduce((1, false)) { acc, d in
            let (p, o) = acc.0.multipliedReportingOverflow(by: d)
            return (p, acc.1 || o)
        }
        guard !overflow, count < 1 << 31 else { throw ModelError.malformed("tensor '\(name)' is too large") }
        let bytes = reader.bytes
        func rawBytes(_ size: Int) throws -> UnsafeRawBufferPointer {
            guard let raw else { throw ModelError.malformed("tensor '\(name)' has no data") }
            guard raw.count == count * size else {
                throw ModelError.malformed("tensor '\(name)': \(raw.count) bytes of data for \(count) values of \(size) bytes")
            }
            return UnsafeRawBufferPointer(rebasing: bytes[raw])
        }
        func checkCount(_ n: Int) throws {
            guard n == count else { throw ModelError.malformed("tensor '\(name)': \(n) values for shape \(shape)") }
        }
        switch dataType {
        case 1:  // float
            if raw != nil {
                let b = try rawBytes(4)
                var values = [Float](repeating: 0, count: count)
                values.withUnsafeMutableBytes { $0.copyMemory(from: b) }  // little-endian host
                return (name, .float(Tensor(shape: shape, data: values)))
            }
            try checkCount(floats.count)
            return (name, .float(Tensor(shape: shape, data: floats)))
        case 10:  // float16
            let values: [Float]
            if raw != nil {
                let b = try rawBytes(2)
                values = (0..<count).map { Float(Float16(bitPattern: UInt16(b[2 * $0]) | UInt16(b[2 * $0 + 1]) << 8)) }
            } else {
                try checkCount(int32s.count)
                values = int32s.map { Float(Float16(bitPattern: UInt16(truncatingIfNeeded: $0))) }
            }
            return (name, .float(Tensor(shape: shape, data: values)))
        case 11:  // double
            if raw != nil {
                let b = try rawBytes(8)
                return (name, .float(Tensor(shape: shape, data: (0..<count).map { Float(b.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self)) })))
            }
            try checkCount(doubles.count)
            return (name, .float(Tensor(shape: shape, data: doubles.map(Float.init))))
        case 7:  // int64
            if raw != nil {
                let b = try rawBytes(8)
                return (name, .int64(shape: shape, data: (0..<count).map { b.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self) }))
            }
            try checkCount(int64s.count)
            return (name, .int64(shape: shape, data: int64s))
        case 6, 5, 4, 3, 2, 9:  // int32, int16, uint16, int8, uint8, bool
            let size = [6: 4, 5: 2, 4: 2, 3: 1, 2: 1, 9: 1][Int(dataType)] ?? 1
            if raw != nil {
                let b = try rawBytes(size)
                let values: [Int64] = (0..<count).map { i in
                    switch dataType {
                    case 6: Int64(b.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
                    case 5: Int64(b.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))
                    case 4: Int64(b.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                    case 3: Int64(Int8(bitPattern: b[i]))
                    default: Int64(b[i])
                    }
                }
                return (name, .int64(shape: shape, data: values))
            }
            try checkCount(int32s.count)
            return (name, .int64(shape: shape, data: int32s))
        default:
            throw ModelError.unsupported("tensor '\(name)' of ONNX data type \(dataType)")
        }
    }

    private static func readValueInfo(_ r: ProtobufReader) throws -> IRGraph.Input {
        var reader = r
        var name = ""
        var dims: [Int?] = []
        while !reader.isAtEnd {
            let (field, wire) = try reader.readTag()
            if field == 1, wire == .lengthDelimited {
                name = reader.string(try reader.readLengthDelimited())
            } else if field == 2, wire == .lengthDelimited {
                // TypeProto.tensor_type(1) → Tensor.shape(2) → TensorShapeProto.dim(1) → dim_value(1)
                var type = reader.reader(try reader.readLengthDelimited())
                while !type.isAtEnd {
                    let (f, w) = try type.readTag()
                    guard f == 1, w == .lengthDelimited else { try type.skip(w); continue }
                    var tensor = type.reader(try type.readLengthDelimited())
                    while !tensor.isAtEnd {
                        let (tf, tw) = try tensor.readTag()
                        guard tf == 2, tw == .lengthDelimited else { try tensor.skip(tw); continue }
                        var shape = tensor.reader(try tensor.readLengthDelimited())
                        while !shape.isAtEnd {
                            let (sf, sw) = try shape.readTag()
                            guard sf == 1, sw == .lengthDelimited else { try shape.skip(sw); continue }
                            var dim = shape.reader(try shape.readLengthDelimited())
                            var value: Int?
                            while !dim.isAtEnd {
                                let (df, dw) = try dim.readTag()
                                if df == 1, dw == .varint { value = Int(truncatingIfNeeded: try dim.readVarint()) } else { try dim.skip(dw) }
                            }
                            dims.append(value.flatMap { $0 > 0 ? $0 : nil })
                        }
                    }
                }
            } else {
                try reader.skip(wire)
            }
        }
        return IRGraph.Input(name: name, dims: dims)
    }
}
