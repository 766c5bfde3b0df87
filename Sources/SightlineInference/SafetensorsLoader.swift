import Foundation
import SightlineCore

/// Reads a `.safetensors` file: an 8-byte little-endian header length, a JSON header mapping
/// each tensor name to {dtype, shape, data_offsets}, then the raw little-endian data. Floating
/// types (F32, F16, BF16, F64) and integer types (I64, I32, I16, I8, U8, BOOL) load as float32.
///
/// Files are memory-mapped (Foundation's `.alwaysMapped`) while their tensors are converted, not
/// read into the heap first: reading MiniLM's 91 MB file into a `Data` made its load cost the
/// file twice over. `SafetensorsRowReader` leaves a large table in the file altogether.
public enum SafetensorsLoader {
    /// One tensor's place in the file, checked against the file's size.
    public struct Entry: Sendable, Equatable {
        public var dtype: String
        public var shape: [Int]
        public var count: Int
        /// Bytes per element.
        public var size: Int
        /// Byte range in the whole file (header included).
        public var bytes: Range<Int>
    }

    /// Every tensor of the file at `path` but those in `skipping`, as float32.
    public static func load(path: String, skipping: Set<String> = []) throws -> [String: Tensor] {
        try load(data: try mapped(path: path), skipping: skipping)
    }

    /// The file, mapped read-only. Model files are replaced by rename (`ModelStore`), so a
    /// mapping keeps the version it opened.
    public static func mapped(path: String) throws -> Data {
        do { return try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw ModelError.missing("cannot read '\(path)': \(error.localizedDescription)")
        }
    }

    public static func load(data: Data, skipping: Set<String> = []) throws -> [String: Tensor] {
        var tensors: [String: Tensor] = [:]
        for (name, entry) in try entries(data: data) where !skipping.contains(name) { tensors[name] = tensor(entry, in: data) }
        return tensors
    }

    /// Every tensor's entry, each checked: known dtype, no negative or overflowing dimension,
    /// offsets inside the file and matching the shape.
    public static func entries(data: Data) throws -> [String: Entry] {
        try entries(head: data, fileLength: data.count)
    }

    /// The header's length field: the first 8 bytes of `head`, checked against the file's length.
    static func headerLength(head: Data, fileLength: Int) throws -> Int {
        guard head.count >= 8, fileLength >= 8 else { throw ModelError.malformed("safetensors file shorter than its header length") }
        let length = head.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard length <= UInt64(fileLength - 8), length <= 100_000_000 else {
            throw ModelError.malformed("safetensors header length \(length) runs past the end")
        }
        return Int(length)
    }

    /// The entries of a file of `fileLength` bytes whose first bytes are `head` (at least the
    /// length field and the JSON header): a reader that does not map the whole file passes only those.
    static func entries(head: Data, fileLength: Int) throws -> [String: Entry] {
        let headerLength = try headerLength(head: head, fileLength: fileLength)
        guard head.count >= 8 + headerLength else { throw ModelError.malformed("safetensors header cut short") }
        let headerEnd = head.startIndex + 8 + headerLength
        guard let header = try? JSONSerialization.jsonObject(with: head.subdata(in: head.startIndex + 8..<headerEnd)) as? [String: Any] else {
            throw ModelError.malformed("safetensors header is not a JSON object")
        }
        let payload = fileLength - 8 - headerLength
        var entries: [String: Entry] = [:]
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
            guard !overflow, count < 1 << 30, offsets[0] >= 0, offsets[1] >= offsets[0], offsets[1] <= payload,
                  offsets[1] - offsets[0] == count * size else {
                throw ModelError.malformed("safetensors entry '\(name)': offsets \(offsets) do not hold \(shape) of \(dtype)")
            }
            let start = 8 + headerLength + offsets[0]
            entries[name] = Entry(dtype: dtype, shape: shape, count: count, size: size, bytes: start..<start + count * size)
        }
        return entries
    }

    /// The entry's values as float32 (a checked entry of `entries(data:)` on the same data).
    static func tensor(_ entry: Entry, in data: Data) -> Tensor {
        let values: [Float] = data.withUnsafeBytes { raw in
            [Float](unsafeUninitializedCapacity: entry.count) { out, initialized in
                let size = entry.size, base = entry.bytes.lowerBound
                for i in 0..<entry.count {
                    let o = base + i * size
                    out[i] = switch entry.dtype {
                    case "F32": raw.loadUnaligned(fromByteOffset: o, as: Float.self)
                    case "F64": Float(raw.loadUnaligned(fromByteOffset: o, as: Double.self))
                    case "F16": Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: o, as: UInt16.self)))
                    case "BF16": Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: o, as: UInt16.self)) << 16)
                    case "I64": Float(raw.loadUnaligned(fromByteOffset: o, as: Int64.self))
                    case "I32": Float(raw.loadUnaligned(fromByteOffset: o, as: Int32.self))
                    case "I16": Float(raw.loadUnaligned(fromByteOffset: o, as: Int16.self))
                    case "I8": Float(Int8(bitPattern: raw[o]))
                    default: Float(raw[o])
                    }
                }
                initialized = entry.count
            }
        }
        return Tensor(shape: entry.shape, data: values)
    }
}

/// A rank-2 float32 tensor of a safetensors file, read one row at a time with `pread`: a
/// lookup table (MiniLM's 30 522 × 384 word embeddings, 47 MB) then costs no resident memory
/// at all. A mapping was tried first, but the kernel maps the neighbouring pages of every row
/// read (fault-around), so half the table was resident within a minute of a batch job.
/// Rows come from the page cache; a row is 1.5 KB and a text a few dozen rows, so the system
/// calls cost microseconds against the milliseconds of the encoder.
public final class SafetensorsRowReader: Sendable {
    public let rows: Int
    public let columns: Int
    /// Owned: closed in deinit. Positional reads share no file offset, so threads may share it.
    private let descriptor: Int32
    /// The table's first byte in the file.
    private let start: Int

    /// The entry `name` of the safetensors file at `path`; it must be a rank-2 F32 tensor.
    public init(path: String, tensor name: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ModelError.missing("cannot open '\(path)': \(String(cString: strerror(errno)))") }
        do {
            var status = stat()
            guard fstat(fd, &status) == 0 else { throw ModelError.missing("cannot stat '\(path)'") }
            let length = Int(status.st_size)
            let lengthField = try Self.read(fd, count: 8, at: 0)
            let headerLength = try SafetensorsLoader.headerLength(head: lengthField, fileLength: length)
            let head = lengthField + (try Self.read(fd, count: headerLength, at: 8))
            let entries = try SafetensorsLoader.entries(head: head, fileLength: length)
            guard let entry = entries[name] else { throw ModelError.missing("'\(name)' in '\(path)'") }
            guard entry.dtype == "F32", entry.shape.count == 2 else {
                throw ModelError.unsupported("'\(name)' is \(entry.dtype) \(entry.shape); a row reader needs rank-2 F32")
            }
            rows = entry.shape[0]
            columns = entry.shape[1]
            start = entry.bytes.lowerBound
            descriptor = fd
        } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(descriptor) }

    /// Adds row `row` to `out[0..<columns]`. Throws for a row outside the table, or if the file
    /// was cut short since it was opened.
    public func add(row: Int, to out: UnsafeMutablePointer<Float>) throws {
        guard row >= 0, row < rows else { throw ModelError.shapeMismatch("row \(row) outside 0..<\(rows)") }
        try withUnsafeTemporaryAllocation(of: Float.self, capacity: columns) { buffer in
            let bytes = UnsafeMutableRawBufferPointer(buffer)
            try Self.fill(descriptor, bytes, at: start + row * columns * 4)
            for d in 0..<columns { out[d] += buffer[d] }
        }
    }

    private static func read(_ fd: Int32, count: Int, at offset: Int) throws -> Data {
        var data = Data(count: count)
        try data.withUnsafeMutableBytes { try fill(fd, $0, at: offset) }
        return data
    }

    /// Reads exactly `bytes.count` bytes at `offset`, retrying short and interrupted reads.
    private static func fill(_ fd: Int32, _ bytes: UnsafeMutableRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < bytes.count {
            guard let base = bytes.baseAddress else { return }
            let n = pread(fd, base + done, bytes.count - done, off_t(offset + done))
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw ModelError.malformed("safetensors file ends before byte \(offset + bytes.count)") }
            done += n
        }
    }
}
