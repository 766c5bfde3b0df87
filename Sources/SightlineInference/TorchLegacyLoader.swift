import Foundation
import SightlineCore

/// Reads a legacy (non-zip) PyTorch `torch.save` file holding a state_dict, WITHOUT running
/// pickle code. The file is five pickles followed by raw storages:
/// magic number, protocol version, sys_info, the object (here an OrderedDict of tensors), the
/// list of storage keys; then for each key, an int64 element count and the elements.
///
/// The pickle interpreter knows only the opcodes a state_dict uses and three globals —
/// `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` and the `torch.*Storage` types
/// — and refuses anything else with a clear error. Nothing is ever called or imported.
public enum TorchLegacyLoader {
    static let magicNumber = "119547037146038801333356"

    public static func load(path: String) throws -> [String: Tensor] {
        guard let data = FileManager.default.contents(atPath: path) else { throw ModelError.missing("cannot read '\(path)'") }
        return try load(data: data)
    }

    public static func load(data: Data) throws -> [String: Tensor] {
        try data.withUnsafeBytes { raw in
            var reader = PickleReader(bytes: raw)
            guard case .int(let magic)? = try? reader.load(), magic.description == magicNumber else {
                if raw.count >= 4 && raw[0] == 0x50 && raw[1] == 0x4b {
                    throw ModelError.unsupported("zip-format PyTorch checkpoints (only the legacy format is read)")
                }
                throw ModelError.malformed("not a legacy PyTorch checkpoint (no magic number)")
            }
            guard case .int(let version) = try reader.load(), version.description == "1001" else {
                throw ModelError.unsupported("PyTorch legacy protocol version other than 1001")
            }
            guard case .dict(let info) = try reader.load() else { throw ModelError.malformed("sys_info is not a dict") }
            if case .bool(false)? = info.first(where: { $0.0 == .string("little_endian") })?.1 {
                throw ModelError.unsupported("big-endian checkpoints")
            }
            let root = try reader.load()
            guard case .list(let keyValues) = try reader.load() else { throw ModelError.malformed("storage key list missing") }
            let keys = try keyValues.map { v -> String in
                guard case .string(let s) = v else { throw ModelError.malformed("storage key is not a string") }
                return s
            }
            // Storages follow the pickles, in key order.
            var offset = reader.position
            var storages: [String: (type: String, values: UnsafeRawBufferPointer, count: Int)] = [:]
            for key in keys {
                guard let storage = reader.storages[key] else { throw ModelError.malformed("storage \(key) is not referenced") }
                guard offset + 8 <= raw.count else { throw ModelError.malformed("truncated before storage \(key)") }
                let count = Int(raw.loadUnaligned(fromByteOffset: offset, as: Int64.self))
                offset += 8
                let size = storage.type == "LongStorage" ? 8 : storage.type == "FloatStorage" ? 4 : 0
                guard size > 0 else { throw ModelError.unsupported("storage type torch.\(storage.type)") }
                guard count >= 0, count < 1 << 30, offset + count * size <= raw.count else {
                    throw ModelError.malformed("storage \(key) runs past the end of the file")
                }
                storages[key] = (storage.type, UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + count * size)]), count)
                offset += count * size
            }
            guard case .dict(let entries) = root else { throw ModelError.unsupported("checkpoint is not a state_dict") }
            var tensors: [String: Tensor] = [:]
            for (k, v) in entries {
                guard case .string(let name) = k else { throw ModelError.malformed("state_dict key is not a string") }
                guard case .tensor(let ref) = v else { throw ModelError.unsupported("state_dict entry '\(name)' is not a tensor") }
                guard let storage = storages[ref.storageKey] else { throw ModelError.malformed("tensor '\(name)' has no storage") }
                tensors[name] = try materialise(ref, storage.values, count: storage.count, isLong: storage.type == "LongStorage", name: name)
            }
            return tensors
        }
    }

    /// Copies a (possibly strided, e.g. HWIO-permuted) view out of its storage, contiguous.
    static func materialise(_ ref: TensorReference, _ values: UnsafeRawBufferPointer, count: Int, isLong: Bool, name: String) throws -> Tensor {
        let shape = ref.shape, strides = ref.strides
        guard shape.count == strides.count, shape.count <= 8, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
            throw ModelError.malformed("tensor '\(name)' has inconsistent size/stride")
        }
        // Every size is checked before anything is allocated: the product and the last element
        // read without overflow, no zero stride on a dimension of 2 or more (a weight never
        // repeats one value; a crafted 196-byte file used that to ask for 3.6 GB), and no more
        // elements than the storage holds.
        var total = 1, last = ref.offset
        for (size, stride) in zip(shape, strides) {
            guard size <= 1 || stride > 0 else { throw ModelError.malformed("tensor '\(name)' has a zero stride on a dimension of \(size)") }
            let (product, overflow) = total.multipliedReportingOverflow(by: size)
            let (reach, overflow2) = max(size - 1, 0).multipliedReportingOverflow(by: stride)
            let (end, overflow3) = last.addingReportingOverflow(reach)
            guard !overflow, !overflow2, !overflow3 else { throw ModelError.malformed("tensor '\(name)': size or stride too large") }
            (total, last) = (product, end)
        }
        guard ref.offset >= 0, total <= count, total == 0 || last < count else {
            throw ModelError.malformed("tensor '\(name)' reads past its storage (\(total) elements, storage of \(count))")
        }
        var out = [Float](repeating: 0, count: total)
        var index = [Int](repeating: 0, count: shape.count)
        for flat in 0..<total {
            var source = ref.offset
            for d in 0..<shape.count { source += index[d] * strides[d] }
            out[flat] = isLong ? Float(values.loadUnaligned(fromByteOffset: source * 8, as: Int64.self))
                : values.loadUnaligned(fromByteOffset: source * 4, as: Float.self)
            advanceIndex(&index, within: shape)
        }
        return Tensor(shape: shape, data: out)
    }
}

struct TensorReference: Equatable {
    var storageKey: String
    var offset: Int
    var shape: [Int]
    var strides: [Int]
}

/// The values the restricted unpickler can build.
indirect enum PickleValue: Equatable {
    case none
    case bool(Bool)
    case int(BigIntText)
    case float(Double)
    case string(String)
    case tuple([PickleValue])
    case list([PickleValue])
    case dict([(PickleValue, PickleValue)])
    case global(String, String)
    case storage(key: String, type: String)
    case tensor(TensorReference)
    case mark

    static func == (a: PickleValue, b: PickleValue) -> Bool {
        switch (a, b) {
        case (.none, .none), (.mark, .mark): true
        case let (.bool(x), .bool(y)): x == y
        case let (.int(x), .int(y)): x == y
        case let (.float(x), .float(y)): x == y
        case let (.string(x), .string(y)): x == y
        case let (.tuple(x), .tuple(y)), let (.list(x), .list(y)): x == y
        case let (.global(m1, n1), .global(m2, n2)): m1 == m2 && n1 == n2
        case let (.storage(k1, t1), .storage(k2, t2)): k1 == k2 && t1 == t2
        case let (.tensor(x), .tensor(y)): x == y
        case let (.dict(x), .dict(y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    var intValue: Int? {
        if case .int(let v) = self { return v.int }
        return nil
    }
}

/// Integers of any size as pickled (LONG1 carries the 24-digit magic number), kept as decimal
/// text with a small-value fast path.
struct BigIntText: Equatable, CustomStringConvertible {
    var int: Int?
    var description: String

    init(_ value: Int) {
        int = value
        description = String(value)
    }

    /// Little-endian two's complement bytes.
    init(bytes: [UInt8]) {
        if bytes.count <= 8 {
            var v: UInt64 = 0
            for (i, b) in bytes.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
            if let last = bytes.last, last & 0x80 != 0, bytes.count < 8 { v |= ~UInt64(0) << (8 * UInt64(bytes.count)) }
            let signed = Int64(bitPattern: v)
            int = Int(signed)
            description = String(signed)
            return
        }
        // Positive big integers only (the magic number): repeated division of the byte array.
        var digits: [UInt8] = []
        var number = Array(bytes.reversed())  // big-endian
        while number.contains(where: { $0 != 0 }) {
            var remainder = 0
            for i in number.indices {
                let value = remainder * 256 + Int(number[i])
                number[i] = UInt8(value / 10)
                remainder = value % 10
            }
            digits.append(UInt8(remainder))
        }
        int = nil
        description = digits.isEmpty ? "0" : String(digits.reversed().map { Character(String($0)) })
    }
}

/// A pickle interpreter for protocol 2 state_dicts that builds data, never executes code.
struct PickleReader {
    let bytes: UnsafeRawBufferPointer
    var position = 0
    private(set) var storages: [String: (type: String, location: String)] = [:]

    init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    private mutating func byte() throws -> UInt8 {
        guard position < bytes.count else { throw ModelError.malformed("pickle ends early") }
        defer { position += 1 }
        return bytes[position]
    }

    private mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, position + n <= bytes.count else { throw ModelError.malformed("pickle ends early") }
        defer { position += n }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + n)])
    }

    private mutating func uint(_ n: Int) throws -> Int {
        let b = try take(n)
        var v = 0
        for i in (0..<n).reversed() { v = v << 8 | Int(b[i]) }
        return v
    }

    private mutating func line() throws -> String {
        var out: [UInt8] = []
        while true {
            let b = try byte()
            if b == 0x0a { break }
            out.append(b)
            if out.count > 256 { throw ModelError.malformed("pickle line too long") }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Containers nested deeper than this are refused: a state_dict needs about five levels,
    /// and a crafted pickle of a million nested tuples would overflow the stack when freed.
    static let maxDepth = 64
    /// Values on the stack at once (a state_dict's SETITEMS holds two per tensor).
    static let maxStack = 1 << 20

    /// A value on the pickle stack and how deeply containers nest inside it.
    private struct Slot {
        var value: PickleValue
        var depth: Int
    }

    /// Reads one complete pickle (up to STOP) and returns its value.
    mutating func load() throws -> PickleValue {
        var stack: [Slot] = []
        var memo: [Int: Slot] = [:]
        func push(_ value: PickleValue, depth: Int = 0) throws {
            guard depth <= Self.maxDepth else { throw ModelError.malformed("pickle nests deeper than \(Self.maxDepth) levels") }
            guard stack.count < Self.maxStack else { throw ModelError.malformed("pickle stack holds more than \(Self.maxStack) values") }
            stack.append(Slot(value: value, depth: depth))
        }
        func pop() throws -> Slot {
            guard let v = stack.popLast() else { throw ModelError.malformed("pickle stack underflow") }
            return v
        }
        func popToMark() throws -> [Slot] {
            guard let markIndex = stack.lastIndex(where: { if case .mark = $0.value { true } else { false } }) else {
                throw ModelError.malformed("pickle MARK missing")
            }
            let items = Array(stack[(markIndex + 1)...])
            stack.removeSubrange(markIndex...)
            return items
        }
        func deepest(_ slots: [Slot]) -> Int { slots.map(\.depth).max() ?? 0 }
        while true {
            let opcode = try byte()
            switch opcode {
            case 0x80: _ = try byte()  // PROTO
            case 0x2e: return try pop().value  // STOP
            case 0x28: try push(.mark)  // MARK
            case 0x4e: try push(.none)  // NONE
            case 0x88: try push(.bool(true))  // NEWTRUE
            case 0x89: try push(.bool(false))  // NEWFALSE
            case 0x4b: try push(.int(BigIntText(try uint(1))))  // BININT1
            case 0x4d: try push(.int(BigIntText(try uint(2))))  // BININT2
            case 0x4a: try push(.int(BigIntText(Int(Int32(truncatingIfNeeded: try uint(4))))))  // BININT
            case 0x8a: try push(.int(BigIntText(bytes: Array(try take(Int(try byte()))))))  // LONG1
            case 0x47: try push(.float(Double(bitPattern: UInt64(bigEndianBytes: try take(8)))))  // BINFLOAT
            case 0x58: try push(.string(String(decoding: try take(try uint(4)), as: UTF8.self)))  // BINUNICODE
            case 0x8c: try push(.string(String(decoding: try take(Int(try byte())), as: UTF8.self)))  // SHORT_BINUNICODE
            case 0x55: try push(.string(String(decoding: try take(Int(try byte())), as: UTF8.self)))  // SHORT_BINSTRING
            case 0x29: try push(.tuple([]), depth: 1)  // EMPTY_TUPLE
            case 0x85: let a = try pop(); try push(.tuple([a.value]), depth: a.depth + 1)  // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); try push(.tuple([a.value, b.value]), depth: max(a.depth, b.depth) + 1)  // TUPLE2
            case 0x87:  // TUPLE3
                let c = try pop(), b = try pop(), a = try pop()
                try push(.tuple([a.value, b.value, c.value]), depth: max(a.depth, b.depth, c.depth) + 1)
            case 0x74: let items = try popToMark(); try push(.tuple(items.map(\.value)), depth: deepest(items) + 1)  // TUPLE
            case 0x5d: try push(.list([]), depth: 1)  // EMPTY_LIST
            case 0x7d: try push(.dict([]), depth: 1)  // EMPTY_DICT
            case 0x61:  // APPEND
                let v = try pop(), container = try pop()
                guard case .list(var items) = container.value else { throw ModelError.malformed("APPEND to a non-list") }
                items.append(v.value)
                try push(.list(items), depth: max(container.depth, v.depth + 1))
            case 0x65:  // APPENDS
                let values = try popToMark(), container = try pop()
                guard case .list(var items) = container.value else { throw ModelError.malformed("APPENDS to a non-list") }
                items += values.map(\.value)
                try push(.list(items), depth: max(container.depth, deepest(values) + 1))
            case 0x73:  // SETITEM
                let v = try pop(), k = try pop(), container = try pop()
                guard case .dict(var d) = container.value else { throw ModelError.malformed("SETITEM on a non-dict") }
                d.append((k.value, v.value))
                try push(.dict(d), depth: max(container.depth, max(k.depth, v.depth) + 1))
            case 0x75:  // SETITEMS
                let values = try popToMark(), container = try pop()
                guard values.count % 2 == 0, case .dict(var d) = container.value else { throw ModelError.malformed("SETITEMS on a non-dict") }
                for i in stride(from: 0, to: values.count, by: 2) { d.append((values[i].value, values[i + 1].value)) }
                try push(.dict(d), depth: max(container.depth, deepest(values) + 1))
            case 0x71: memo[try uint(1)] = stack.last  // BINPUT
            case 0x72: memo[try uint(4)] = stack.last  // LONG_BINPUT
            case 0x94: memo[memo.count] = stack.last  // MEMOIZE
            case 0x68, 0x6a:  // BINGET, LONG_BINGET
                let key = try uint(opcode == 0x68 ? 1 : 4)
                guard let v = memo[key] else { throw ModelError.malformed("pickle memo \(key) missing") }
                try push(v.value, depth: v.depth)
            case 0x63:  // GLOBAL
                let module = try line(), name = try line()
                try Self.checkGlobal(module, name)
                try push(.global(module, name))
            case 0x51:  // BINPERSID: ('storage', StorageType, key, location, size[, view])
                guard case .tuple(let id) = try pop().value, id.count >= 5, case .string("storage") = id[0],
                      case .global("torch", let type) = id[1], case .string(let key) = id[2], case .string(let location) = id[3] else {
                    throw ModelError.unsupported("a persistent id other than a torch storage")
                }
                storages[key] = (type, location)
                try push(.storage(key: key, type: type))
            case 0x52:  // REDUCE
                let args = try pop(), callable = try pop()
                try push(try Self.reduce(callable.value, args.value), depth: args.depth)
            case 0x62:  // BUILD: state for an OrderedDict (empty) — nothing to set
                _ = try pop()
            case 0x95: _ = try take(8)  // FRAME
            default:
                throw ModelError.unsupported(String(format: "pickle opcode 0x%02x (only the opcodes a state_dict needs are read)", opcode))
            }
        }
    }

    static func checkGlobal(_ module: String, _ name: String) throws {
        let allowed: Set<String> = [
            "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor",
            "torch.FloatStorage", "torch.LongStorage",
        ]
        guard allowed.contains("\(module).\(name)") else {
            throw ModelError.unsupported("pickle global \(module).\(name): refused (a state_dict needs only OrderedDict, tensors and storages)")
        }
    }

    static func reduce(_ callable: PickleValue, _ args: PickleValue) throws -> PickleValue {
        guard case .global(let module, let name) = callable, case .tuple(let a) = args else {
            throw ModelError.unsupported("pickle REDUCE of something other than an allowed global")
        }
        switch "\(module).\(name)" {
        case "collections.OrderedDict":
            return .dict([])
        case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
            // (storage, storage_offset, size, stride, ...)
            guard a.count >= 4, case .storage(let key, _) = a[0], let offset = a[1].intValue,
                  case .tuple(let size) = a[2], case .tuple(let stride) = a[3] else {
                throw ModelError.malformed("bad _rebuild_tensor arguments")
            }
            let shape = try size.map { v -> Int in guard let i = v.intValue else { throw ModelError.malformed("bad tensor size") }; return i }
            let strides = try stride.map { v -> Int in guard let i = v.intValue else { throw ModelError.malformed("bad tensor stride") }; return i }
            return .tensor(TensorReference(storageKey: key, offset: offset, shape: shape, strides: strides))
        default:
            throw ModelError.unsupported("calling \(module).\(name)")
        }
    }
}

extension UInt64 {
    init(bigEndianBytes b: UnsafeRawBufferPointer) {
        var v: UInt64 = 0
        for byte in b { v = v << 8 | UInt64(byte) }
        self = v
    }
}
