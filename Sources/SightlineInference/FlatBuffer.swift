import SightlineCore

/// A read-only view of a FlatBuffer (the TFLite file format) in which every read is checked:
/// offsets, vtables and vector lengths that point outside the file throw `ModelError.malformed`,
/// so a damaged or hostile file is refused and never traps. Written here because no package on
/// our list reads FlatBuffers, and a reader needs only the few rules below.
///
/// The format, little-endian: the file starts with a 32-bit offset to the root table. A table
/// starts with a signed 32-bit offset back to its vtable; the vtable holds its own size, the
/// table's size, then one 16-bit offset per field (0: the field is absent and takes its
/// default). A field of a reference type (table, vector, string) holds a 32-bit offset from
/// where it is stored; a vector starts with its 32-bit element count.
struct FlatBuffer {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    private func fail(_ what: String) -> ModelError { .malformed("flatbuffer: \(what)") }

    /// `size` bytes at `position` lie inside the file.
    func check(_ position: Int, _ size: Int, _ what: @autoclosure () -> String) throws {
        guard position >= 0, size >= 0, position <= bytes.count, size <= bytes.count - position else {
            throw fail("\(what()) at \(position) (+\(size)) outside the file's \(bytes.count) bytes")
        }
    }

    func uint8(at position: Int) throws -> UInt8 {
        try check(position, 1, "a byte")
        return bytes[position]
    }

    func uint16(at position: Int) throws -> UInt16 {
        try check(position, 2, "a 16-bit value")
        return UInt16(bytes[position]) | UInt16(bytes[position + 1]) << 8
    }

    func uint32(at position: Int) throws -> UInt32 {
        try check(position, 4, "a 32-bit value")
        var value: UInt32 = 0
        for i in 0..<4 { value |= UInt32(bytes[position + i]) << (8 * i) }
        return value
    }

    func int32(at position: Int) throws -> Int32 { Int32(bitPattern: try uint32(at: position)) }

    func uint64(at position: Int) throws -> UInt64 {
        try check(position, 8, "a 64-bit value")
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(bytes[position + i]) << (8 * i) }
        return value
    }

    /// The position a 32-bit offset stored at `position` points to.
    func follow(_ position: Int) throws -> Int {
        let target = position + Int(try uint32(at: position))
        try check(target, 0, "an offset's target")
        return target
    }

    /// The root table (after checking the file identifier, when given).
    func root(identifier: String? = nil) throws -> Table {
        if let identifier {
            let expected = Array(identifier.utf8)
            try check(4, expected.count, "the file identifier")
            guard Array(bytes[4..<(4 + expected.count)]) == expected else {
                throw fail("file identifier is not '\(identifier)'")
            }
        }
        return try Table(self, at: try follow(0))
    }

    /// A table: its position and its vtable, both checked.
    struct Table {
        let buffer: FlatBuffer
        let position: Int
        private let vtable: Int
        private let vtableSize: Int

        init(_ buffer: FlatBuffer, at position: Int) throws {
            self.buffer = buffer
            self.position = position
            let vtable = position - Int(try buffer.int32(at: position))
            let size = Int(try buffer.uint16(at: vtable))
            guard size >= 4, size % 2 == 0 else { throw buffer.fail("vtable of size \(size) at \(vtable)") }
            try buffer.check(vtable, size, "a vtable")
            let tableSize = Int(try buffer.uint16(at: vtable + 2))
            try buffer.check(position, tableSize, "a table")
            self.vtable = vtable
            self.vtableSize = size
        }

        /// Where field `id` (0-based, in schema order) is stored, or nil when absent.
        func field(_ id: Int) throws -> Int? {
            let slot = 4 + 2 * id
            guard slot + 2 <= vtableSize else { return nil }
            let offset = Int(try buffer.uint16(at: vtable + slot))
            return offset == 0 ? nil : position + offset
        }

        func uint8(_ id: Int, default value: UInt8 = 0) throws -> UInt8 {
            guard let at = try field(id) else { return value }
            return try buffer.uint8(at: at)
        }

        func int8(_ id: Int, default value: Int8 = 0) throws -> Int8 { Int8(bitPattern: try uint8(id, default: UInt8(bitPattern: value))) }

        func bool(_ id: Int, default value: Bool = false) throws -> Bool { try uint8(id, default: value ? 1 : 0) != 0 }

        func int32(_ id: Int, default value: Int32 = 0) throws -> Int32 {
            guard let at = try field(id) else { return value }
            return try buffer.int32(at: at)
        }

        func uint32(_ id: Int, default value: UInt32 = 0) throws -> UInt32 {
            guard let at = try field(id) else { return value }
            return try buffer.uint32(at: at)
        }

        func uint64(_ id: Int, default value: UInt64 = 0) throws -> UInt64 {
            guard let at = try field(id) else { return value }
            return try buffer.uint64(at: at)
        }

        func float(_ id: Int, default value: Float = 0) throws -> Float {
            guard let at = try field(id) else { return value }
            return Float(bitPattern: try buffer.uint32(at: at))
        }

        func table(_ id: Int) throws -> Table? {
            guard let at = try field(id) else { return nil }
            return try Table(buffer, at: try buffer.follow(at))
        }

        func vector(_ id: Int, elementSize: Int) throws -> Vector? {
            guard let at = try field(id) else { return nil }
            return try Vector(buffer, at: try buffer.follow(at), elementSize: elementSize)
        }

        func string(_ id: Int) throws -> String? {
            guard let bytes = try vector(id, elementSize: 1) else { return nil }
            return String(decoding: try bytes.bytes(), as: UTF8.self)
        }

        func tables(_ id: Int) throws -> [Table] {
            guard let vector = try vector(id, elementSize: 4) else { return [] }
            return try (0..<vector.count).map { try Table(buffer, at: try buffer.follow(vector.start + 4 * $0)) }
        }

        func int32s(_ id: Int) throws -> [Int32] {
            guard let vector = try vector(id, elementSize: 4) else { return [] }
            return try (0..<vector.count).map { try buffer.int32(at: vector.start + 4 * $0) }
        }

        func floats(_ id: Int) throws -> [Float] {
            guard let vector = try vector(id, elementSize: 4) else { return [] }
            return try (0..<vector.count).map { Float(bitPattern: try buffer.uint32(at: vector.start + 4 * $0)) }
        }

        func int64s(_ id: Int) throws -> [Int64] {
            guard let vector = try vector(id, elementSize: 8) else { return [] }
            return try (0..<vector.count).map { Int64(bitPattern: try buffer.uint64(at: vector.start + 8 * $0)) }
        }
    }

    /// A vector: `count` elements of `elementSize` bytes from `start`, checked to lie in the file.
    struct Vector {
        let buffer: FlatBuffer
        let start: Int
        let count: Int
        let elementSize: Int

        init(_ buffer: FlatBuffer, at position: Int, elementSize: Int) throws {
            let count = Int(try buffer.uint32(at: position))
            // Checked before anything is allocated from it: count × size must fit the file.
            guard count <= (buffer.bytes.count - position) / max(elementSize, 1) else {
                throw buffer.fail("a vector of \(count) × \(elementSize) bytes at \(position) runs past the end of the file")
            }
            try buffer.check(position + 4, count * elementSize, "a vector")
            self.buffer = buffer
            self.start = position + 4
            self.count = count
            self.elementSize = elementSize
        }

        func bytes() throws -> ArraySlice<UInt8> {
            try buffer.check(start, count * elementSize, "a vector")
            return buffer.bytes[start..<(start + count * elementSize)]
        }
    }
}
