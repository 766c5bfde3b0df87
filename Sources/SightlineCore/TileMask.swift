/// Which tiles of a frame changed: a grid of `tileSize`-pixel tiles, row-major.
public struct TileMask: Sendable, Codable, Equatable {
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

    // Coded with the bits as hex (`hex`), a quarter of a character per tile rather than a
    // JSON boolean each.
    private enum CodingKeys: String, CodingKey { case tileSize, columns, rows, hex }

    /// Decoded data is checked like the initialiser's arguments (it may come off the network).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let tileSize = try c.decode(Int.self, forKey: .tileSize), columns = try c.decode(Int.self, forKey: .columns)
        let rows = try c.decode(Int.self, forKey: .rows), hex = try c.decode(String.self, forKey: .hex)
        guard tileSize >= 1, columns >= 0, rows >= 0, columns <= 1 << 16, rows <= 1 << 16,
              let mask = TileMask(hex: hex, tileSize: tileSize, columns: columns, rows: rows) else {
            throw DecodingError.dataCorruptedError(forKey: .hex, in: c, debugDescription: "a tile mask holds one bit per tile")
        }
        self = mask
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(tileSize, forKey: .tileSize)
        try c.encode(columns, forKey: .columns)
        try c.encode(rows, forKey: .rows)
        try c.encode(hex, forKey: .hex)
    }

    public subscript(row: Int, column: Int) -> Bool { bits[row * columns + column] }

    public var fraction: Double { bits.isEmpty ? 0 : Double(bits.filter { $0 }.count) / Double(bits.count) }

    /// Whether a set tile overlaps `box` (pixels; a box wholly outside the grid touches none).
    public func touches(_ box: PixelBox) -> Bool {
        guard tileSize > 0, box.width > 0, box.height > 0 else { return false }
        let t = Double(tileSize)
        let c0 = max(0, Int((box.x / t).rounded(.down))), c1 = min(columns - 1, Int(((box.x + box.width) / t).rounded(.up)) - 1)
        let r0 = max(0, Int((box.y / t).rounded(.down))), r1 = min(rows - 1, Int(((box.y + box.height) / t).rounded(.up)) - 1)
        guard c0 <= c1, r0 <= r1 else { return false }
        for r in r0...r1 { for c in c0...c1 where self[r, c] { return true } }
        return false
    }

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
