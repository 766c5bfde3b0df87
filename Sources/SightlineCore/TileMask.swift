/// Which tiles of a frame changed: a grid of `tileSize`-pixel tiles, row-major.
public struct TileMask: Sendable, Equatable {
    public var tileSize: Int
    public var columns: Int
    public var rows: Int
    public var bits: [Bool]

    public init(tileSize: Int, columns: Int, rows: Int, bits: [Bool]) {
        precondition(bits.count == columns * rows, "a tile mask holds one bit per tile")
        self.tileSize = tileSize
        self.columns = columns
        self.rows = rows
        self.bits = bits
    }

    public subscript(row: Int, column: Int) -> Bool { bits[row * columns + column] }

    public var fraction: Double { bits.isEmpty ? 0 : Double(bits.filter { $0 }.count) / Double(bits.count) }

    /// Row-major bits as hex, four tiles per digit, most significant bit first (the `regions`
    /// message's `mask`).
    public var hex: String {
        var out = ""
        out.reserveCapacity((bits.count + 3) / 4)
        for start in stride(from: 0, to: bits.count, by: 4) {
            var nibble = 0
            for i in 0..<4 where start + i < bits.count && bits[start + i] { nibble |= 8 >> i }
            out.append(String(nibble, radix: 16))
        }
        return out
    }

    /// Reads the published form back (subscribers, tests); nodes pass the mask itself.
    public init?(hex: String, tileSize: Int, columns: Int, rows: Int) {
        let count = columns * rows
        guard hex.count == (count + 3) / 4 else { return nil }
        var bits: [Bool] = []
        bits.reserveCapacity(count)
        for character in hex {
            guard let nibble = Int(String(character), radix: 16) else { return nil }
            for i in 0..<4 where bits.count < count { bits.append(nibble & (8 >> i) != 0) }
        }
        self.init(tileSize: tileSize, columns: columns, rows: rows, bits: bits)
    }
}
