import Foundation
import SightlineCore

/// Reads a `.safetensors` file: an 8-byte little-endian header length, a JSON header mapping
/// each tensor name to {dtype, shape, data_offsets}, then the raw little-endian data. Floating
/// types (F32, F16, BF16, F64) and integer types (I64, I32, I16, I8, U8, BOOL) load as float32.
public enum SafetensorsLoader {
    public static func load(path: String) throws -> [String: Tensor] {
        guard let data = FileManager.default.contents(atPath: path) else { throw ModelError.missing("cannot read '\(path)'") }
        return try load(data: data)
    }

    public static func load(data: Data) throws -> [String: Tensor] {
        guard data.count >= 8 else { throw ModelError.malformed("safetensors file shorter than its header length") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(data.count - 8), headerLength <= 100_000_000 else {
            throw ModelError.malformed("safetensors header length \(headerLength) runs past the end")
        }
        let headerEnd = 8 + Int(headerLength)
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<headerEnd)) as? [String: Any] else {
            throw ModelError.malformed("safetensors header is not a JSON object")
        }
        let buffer = data.subdata(in: headerEnd..<data.count)
        var tensors: [String: Tensor] = [:]
        for (name, value) in header where name != "__metadata__" {
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shape = (info["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                  let offsets = (info["data_offsets"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }), offsets.count == 2 else {
                throw ModelError.malformed("safetensors entry '\(name)' lacks dtype/shape/data_offsets")
            }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw ModelError.malformed("safetensors entry '\(name)' has a negative dimension") }
            let (count, overflow) = shape.reduce((1, false)) { acc, d in
                let (p, o) = acc.0.multipliedReportingOverflow(by: d)
                return (p, acc.1 || o)
            }
            let size: Int
            switch dtype {
            case "F64", "I64": size = 8
            case "F32", "I32": size = 4
            case "F16", "BF16", "I16": size = 2
            case "I8", "U8", "BOOL": size = 1
            default: throw ModelError.unsupported("safetensors dtype \(dtype) (tensor '\(name)')")
            }
            guard !overflow, count < 1 << 30, offsets[0] >= 0, offsets[1] >= offsets[0], offsets[1] <= buffer.count,
                  offsets[1] - offsets[0] == count * size else {
                throw ModelError.malformed("safetensors entry '\(name)': offsets \(offsets) do not hold \(shape) of \(dtype)")
            }
            let values: [Float] = buffer.withUnsafeBytes { raw in
                let base = offsets[0]
                return (0..<count).map { i in
                    let o = base + i * size
                    switch dtype {
                    case "F32": return raw.loadUnaligned(fromByteOffset: o, as: Float.self)
                    case "F64": return Float(raw.loadUnaligned(fromByteOffset: o, as: Double.self))
                    case "F16": return Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: o, as: UInt16.self)))
                    case "BF16": return Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: o, as: UInt16.self)) << 16)
                    case "I64": return Float(raw.loadUnaligned(fromByteOffset: o, as: Int64.self))
                    case "I32": return Float(raw.loadUnaligned(fromByteOffset: o, as: Int32.self))
                    case "I16": return Float(raw.loadUnaligned(fromByteOffset: o, as: Int16.self))
                    case "I8": return Float(Int8(bitPattern: raw[o]))
                    default: return Float(raw[o])
                    }
                }
            }
            tensors[name] = Tensor(shape: shape, data: values)
        }
        return tensors
    }
}
