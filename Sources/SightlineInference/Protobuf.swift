import SightlineCore
/// A minimal protocol-buffers wire-format reader: enough to walk ONNX's messages field by
/// field. Every read is bounds-checked; malformed input throws, never traps.
struct ProtobufReader {
    enum WireType: UInt8 {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, fixed32 = 5
    }

    let bytes: UnsafeRawBufferPointer
    private(set) var position: Int
    let end: Int

    init(_ bytes: UnsafeRawBufferPointer, range: Range<Int>? = nil) {
        self.bytes = bytes
        self.position = range?.lowerBound ?? 0
        self.end = range?.upperBound ?? bytes.count
    }

    var isAtEnd: Bool { position >= end }

    mutating func readVarint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < end else { throw ModelError.malformed("truncated varint") }
            let byte = bytes[position]
            position += 1
            if shift == 63 && byte > 1 { throw ModelError.malformed("varint overflows 64 bits") }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw ModelError.malformed("varint too long") }
        }
    }

    /// (field number, wire type) of the next field.
    mutating func readTag() throws -> (field: Int, wire: WireType) {
        let tag = try readVarint()
        guard let wire = WireType(rawValue: UInt8(tag & 7)) else { throw ModelError.malformed("unsupported wire type \(tag & 7)") }
        let field = Int(tag >> 3)
        guard field > 0 else { throw ModelError.malformed("field number 0") }
        return (field, wire)
    }

    /// The byte range of a length-delimited field.
    mutating func readLengthDelimited() throws -> Range<Int> {
        let length = try readVarint()
        guard length <= UInt64(end - position) else { throw ModelError.malformed("length \(length) runs past the end") }
        let start = position
        position += Int(length)
        return start..<position
    }

    mutating func readFixed32() throws -> UInt32 {
        guard end - position >= 4 else { throw ModelError.malformed("truncated fixed32") }
        let v = UInt32(bytes[position]) | UInt32(bytes[position + 1]) << 8 | UInt32(bytes[position + 2]) << 16 | UInt32(bytes[position + 3]) << 24
        position += 4
        return v
    }

    mutating func readFixed64() throws -> UInt64 {
        let lo = UInt64(try readFixed32())
        let hi = UInt64(try readFixed32())
        return lo | hi << 32
    }

    mutating func skip(_ wire: WireType) throws {
        switch wire {
        case .varint: _ = try readVarint()
        case .fixed64: _ = try readFixed64()
        case .fixed32: _ = try readFixed32()
        case .lengthDelimited: _ = try readLengthDelimited()
        }
    }

    func string(_ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    func reader(_ range: Range<Int>) -> ProtobufReader { ProtobufReader(bytes, range: range) }

    /// Repeated int64 either packed (one length-delimited run) or one varint per field.
    mutating func readInt64s(_ wire: WireType, into values: inout [Int64]) throws {
        if wire == .lengthDelimited {
            var inner = reader(try readLengthDelimited())
            while !inner.isAtEnd { values.append(Int64(bitPattern: try inner.readVarint())) }
        } else {
            values.append(Int64(bitPattern: try readVarint()))
        }
    }

    mutating func readFloats(_ wire: WireType, into values: inout [Float]) throws {
        if wire == .lengthDelimited {
            var inner = reader(try readLengthDelimited())
            while !inner.isAtEnd { values.append(Float(bitPattern: try inner.readFixed32())) }
        } else {
            values.append(Float(bitPattern: try readFixed32()))
        }
    }
}

/// What can go wrong loading or running a model; each message names the problem plainly.
public enum ModelError: UserFacingError, Equatable {
    case malformed(String)
    case unsupportedOperator(String, node: String)
    case unsupported(String)
    case shapeMismatch(String)
    case missing(String)

    public var message: String {
        switch self {
        case .malformed(let why): "malformed model file: \(why)"
        case .unsupportedOperator(let op, let node): "unsupported operator '\(op)' (node '\(node)')"
        case .unsupported(let what): "unsupported: \(what)"
        case .shapeMismatch(let what): "shape mismatch: \(what)"
        case .missing(let what): "missing: \(what)"
        }
    }

    public var hint: String? {
        switch self {
        case .malformed: "the file is damaged or not a model; fetch it again (`sightline models fetch`) or export it again"
        case .unsupportedOperator: "the engine supports the operators `Operators.table` lists; convert the model or add the operator (Docs/architecture.md)"
        default: nil
        }
    }
}
