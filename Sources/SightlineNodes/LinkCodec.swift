import Foundation
import SightlineCore
import SightlineGraph

/// What travels from the edge part of a split pipeline to its core part (`link_send` →
/// `link_receive`), one NATS message per item: a 4-byte big-endian header length, the JSON
/// header, then the binary parts the header lists (JPEG pictures, a record's vector as
/// float32 little-endian). Frames travel as pictures of what changed, not as video:
/// `full` (the whole picture), `tiles` (rectangles around the changed tiles, pasted onto the
/// picture the core holds) or `unchanged` (the held picture stands). The receiving side may be
/// on another machine, so decoding checks every length before it reads or allocates.
public enum LinkCodec {
    public static let version = 1
    /// Headers are small (a frame's metadata, a record); anything larger is refused.
    public static let maxHeaderBytes = 4 << 20
    public static let maxParts = 4096

    public enum Transfer: String, Codable, Sendable {
        case full, tiles, unchanged
    }

    public struct Rect: Codable, Sendable, Equatable {
        public var x: Int
        public var y: Int
        public var width: Int
        public var height: Int

        public init(x: Int, y: Int, width: Int, height: Int) {
            self.x = x
            self.y = y
            self.width = width
            self.height = height
        }

        // `[x, y, width, height]`: a frame may carry dozens, and keyed objects cost three
        // times the bytes (a third of a busy street camera's link, measured).
        public init(from decoder: any Decoder) throws {
            var c = try decoder.unkeyedContainer()
            self.init(x: try c.decode(Int.self), y: try c.decode(Int.self), width: try c.decode(Int.self), height: try c.decode(Int.self))
            guard c.isAtEnd else { throw DecodingError.dataCorruptedError(in: c, debugDescription: "a rectangle is [x, y, width, height]") }
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.unkeyedContainer()
            try c.encode(x)
            try c.encode(y)
            try c.encode(width)
            try c.encode(height)
        }
    }

    /// A frame without its pixels, and how its pixels travel.
    public struct FrameInfo: Codable, Sendable, Equatable {
        public var sourceID: String
        public var decodeIndex: Int
        public var timestamp: Timestamp
        public var seconds: Double
        public var ingestWallClock: Double
        public var isKeyframe: Bool
        public var width: Int
        public var height: Int
        public var pixelFormat: PixelFormat
        public var metadata: [String: String]
        public var gapBefore: Double?
        public var transfer: Transfer
        /// With `tiles`: where each changed rectangle goes on the frame, and where it sits in
        /// the one picture (a mosaic) that carries them all.
        public var rects: [Rect]
        public var mosaic: [Rect]
    }

    public enum Kind: String, Codable, Sendable {
        case frame, record, status, endOfStream = "end_of_stream"
        /// The edge's run ended (its pipeline stopped): the core side may end too.
        case end
    }

    public struct Header: Codable, Sendable {
        public var version: Int
        public var kind: Kind
        public var frame: FrameInfo?
        public var record: Record?
        public var status: StatusEvent?
        public var endOfStream: EndOfStream?
        /// Byte length of each binary part, in order.
        public var parts: [Int]
        /// Wall-clock time the edge sent it (the link's latency).
        public var sentAt: Double
    }

    public struct Message: Sendable {
        public var header: Header
        public var parts: [Data]
    }

    public enum DecodeError: Error, CustomStringConvertible, Equatable {
        case malformed(String)
        public var description: String {
            switch self {
            case .malformed(let why): "malformed link message: \(why)"
            }
        }
    }

    private static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    private static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }

    public static func encode(_ header: Header, parts: [Data]) throws -> Data {
        var header = header
        header.parts = parts.map(\.count)
        let json = try encoder().encode(header)
        var out = Data(capacity: 4 + json.count + parts.reduce(0) { $0 + $1.count })
        let length = UInt32(json.count)
        out.append(contentsOf: [UInt8(length >> 24), UInt8((length >> 16) & 0xff), UInt8((length >> 8) & 0xff), UInt8(length & 0xff)])
        out.append(json)
        for part in parts { out.append(part) }
        return out
    }

    public static func decode(_ data: Data) throws -> Message {
        let bytes = [UInt8](data)
        guard bytes.count >= 4 else { throw DecodeError.malformed("\(bytes.count) bytes, shorter than the length prefix") }
        let length = Int(bytes[0]) << 24 | Int(bytes[1]) << 16 | Int(bytes[2]) << 8 | Int(bytes[3])
        guard length > 0, length <= maxHeaderBytes, length <= bytes.count - 4 else {
            throw DecodeError.malformed("header length \(length) does not fit the \(bytes.count)-byte message")
        }
        let header: Header
        do {
            header = try decoder().decode(Header.self, from: Data(bytes[4..<(4 + length)]))
        } catch {
            throw DecodeError.malformed("header: \(error)")
        }
        guard header.version == version else { throw DecodeError.malformed("version \(header.version); this build reads version \(version)") }
        guard header.parts.count <= maxParts, header.parts.allSatisfy({ $0 >= 0 }) else { throw DecodeError.malformed("bad part lengths") }
        var offset = 4 + length
        var parts: [Data] = []
        for count in header.parts {
            guard count <= bytes.count - offset else { throw DecodeError.malformed("part of \(count) bytes runs past the message's end") }
            parts.append(Data(bytes[offset..<(offset + count)]))
            offset += count
        }
        guard offset == bytes.count else { throw DecodeError.malformed("\(bytes.count - offset) bytes after the last part") }
        return Message(header: header, parts: parts)
    }

    /// A message without parts: a status, an end of stream, or the edge's end.
    public static func encode(_ kind: Kind, status: StatusEvent? = nil, endOfStream: EndOfStream? = nil, sentAt: Double) throws -> Data {
        try encode(Header(version: version, kind: kind, status: status, endOfStream: endOfStream, parts: [], sentAt: sentAt), parts: [])
    }

    /// A frame message: what `FramePacker.pack` returned.
    public static func encode(frame: FrameInfo, parts: [Data], sentAt: Double) throws -> Data {
        try encode(Header(version: version, kind: .frame, frame: frame, parts: [], sentAt: sentAt), parts: parts)
    }

    // MARK: records

    /// A record's header and parts: its vector (an embedding, a histogram) goes as float32
    /// bytes rather than JSON numbers, a third of the size and exact.
    public static func encode(record: Record, sentAt: Double) throws -> Data {
        var stripped = record
        var parts: [Data] = []
        if let vector = record.value.vector {
            stripped.value = record.value.withVector([])
            parts.append(vector.withUnsafeBufferPointer { Data(buffer: $0) })
        }
        return try encode(Header(version: version, kind: .record, record: stripped, parts: [], sentAt: sentAt), parts: parts)
    }

    /// The record of a decoded `record` message, its vector put back.
    public static func record(of message: Message) throws -> Record {
        guard var record = message.header.record else { throw DecodeError.malformed("a record message without its record") }
        if let part = message.parts.first {
            guard record.value.vector != nil, part.count % 4 == 0 else { throw DecodeError.malformed("a vector part on a record that has none") }
            var vector = [Float](repeating: 0, count: part.count / 4)
            vector.withUnsafeMutableBytes { _ = part.copyBytes(to: $0) }
            record.value = record.value.withVector(vector)
        }
        return record
    }
}

extension ResultValue {
    /// The same value carrying `vector` as its binary payload (see `vector`).
    func withVector(_ vector: [Float]) -> ResultValue {
        switch self {
        case .stats(var s): s.histogram = vector; return .stats(s)
        case .embedding(var e): e.vector = vector; return .embedding(e)
        default: return self
        }
    }
}

/// Where a frame's changed rectangles sit in the one picture that carries them: shelves
/// left to right, top to bottom, each place on a 16-pixel grid so no JPEG block (nor 4:2:0
/// chroma sample) holds two rectangles. One picture rather than one per rectangle: a JPEG's
/// tables cost about 600 bytes, more than a small rectangle's pixels. Pure.
public enum MosaicLayout {
    public static let grid = 16

    public static func layout(_ rects: [LinkCodec.Rect], maxWidth: Int) -> (width: Int, height: Int, places: [LinkCodec.Rect]) {
        func up(_ v: Int) -> Int { (v + grid - 1) / grid * grid }
        let width = max(up(maxWidth), rects.map { up($0.width) }.max() ?? grid)
        var places: [LinkCodec.Rect] = []
        var x = 0, y = 0, shelf = 0
        for rect in rects {
            if x > 0 && x + up(rect.width) > width {
                y += shelf
                x = 0
                shelf = 0
            }
            places.append(LinkCodec.Rect(x: x, y: y, width: rect.width, height: rect.height))
            x += up(rect.width)
            shelf = max(shelf, up(rect.height))
        }
        return (width, max(grid, y + shelf), places)
    }
}

/// Rectangles that cover exactly a frame's changed tiles: each row's runs of changed tiles,
/// a run joined with the one below when they span the same columns. (Bounding boxes of
/// connected groups sent 2.5 times the changed area on a street camera: people's outlines
/// are not boxes.) Clipped to the frame; each side at least 2 pixels (a 4:2:0 JPEG needs
/// it), grown toward the frame's inside. Pure.
public enum TileCover {
    public static func rects(_ mask: TileMask, width: Int, height: Int) -> [LinkCodec.Rect] {
        guard width >= 2, height >= 2, mask.columns > 0, mask.rows > 0 else { return [] }
        // Open runs of the row above, by column span: (first column, end column) -> first row.
        var open: [Int: (start: Int, end: Int, row0: Int)] = [:]
        var spans: [(c0: Int, c1: Int, r0: Int, r1: Int)] = []
        for row in 0...mask.rows {
            var runs: [(Int, Int)] = []
            if row < mask.rows {
                var column = 0
                while column < mask.columns {
                    guard mask[row, column] else { column += 1; continue }
                    var end = column
                    while end < mask.columns && mask[row, end] { end += 1 }
                    runs.append((column, end))
                    column = end
                }
            }
            var next: [Int: (start: Int, end: Int, row0: Int)] = [:]
            for (start, end) in runs {
                if let above = open[start], above.end == end {
                    next[start] = above
                    open[start] = nil
                } else {
                    next[start] = (start, end, row)
                }
            }
            for run in open.values { spans.append((run.start, run.end, run.row0, row)) }
            open = next
        }
        let tile = mask.tileSize
        return spans.sorted { ($0.r0, $0.c0) < ($1.r0, $1.c0) }.compactMap { span in
            var x0 = span.c0 * tile, y0 = span.r0 * tile
            let x1 = min(width, span.c1 * tile), y1 = min(height, span.r1 * tile)
            guard x1 > x0, y1 > y0 else { return nil }
            if x1 - x0 < 2 { x0 = max(0, x1 - 2) }
            if y1 - y0 < 2 { y0 = max(0, y1 - 2) }
            return LinkCodec.Rect(x: x0, y: y0, width: x1 - x0, height: y1 - y0)
        }
    }
}

/// The picture the core side holds per source: the last full picture with every later tile
/// pasted on. Pure; sizes are checked before anything is copied.
public struct FrameCanvas: Sendable {
    public private(set) var width: Int
    public private(set) var height: Int
    public private(set) var format: PixelFormat
    public private(set) var pixels: [UInt8]

    public init?(width: Int, height: Int, format: PixelFormat, pixels: [UInt8]) {
        guard width > 0, height > 0, pixels.count == width * height * format.bytesPerPixel else { return nil }
        self.width = width
        self.height = height
        self.format = format
        self.pixels = pixels
    }

    public func matches(width: Int, height: Int, format: PixelFormat) -> Bool {
        self.width == width && self.height == height && self.format == format
    }

    /// Copies a `rect.width`×`rect.height` picture onto the canvas at the rectangle; false
    /// (and nothing changed) when it does not fit.
    @discardableResult
    public mutating func paste(_ tile: [UInt8], at rect: LinkCodec.Rect) -> Bool {
        let bpp = format.bytesPerPixel
        guard rect.x >= 0, rect.y >= 0, rect.width > 0, rect.height > 0, rect.x <= width - rect.width, rect.y <= height - rect.height,
              tile.count == rect.width * rect.height * bpp else { return false }
        let rowBytes = rect.width * bpp
        let width = self.width
        pixels.withUnsafeMutableBufferPointer { canvas in
            tile.withUnsafeBufferPointer { source in
                guard let to = canvas.baseAddress, let from = source.baseAddress else { return }
                for row in 0..<rect.height {
                    (to + ((rect.y + row) * width + rect.x) * bpp).update(from: from + row * rowBytes, count: rowBytes)
                }
            }
        }
        return true
    }

    /// The pixels of `rect` of a packed `width`-wide picture (the sending side's crop).
    public static func crop(_ pixels: [UInt8], width: Int, format: PixelFormat, rect: LinkCodec.Rect) -> [UInt8] {
        let bpp = format.bytesPerPixel, rowBytes = rect.width * bpp
        var out = [UInt8](repeating: 0, count: rect.height * rowBytes)
        out.withUnsafeMutableBufferPointer { dst in
            pixels.withUnsafeBufferPointer { src in
                guard let to = dst.baseAddress, let from = src.baseAddress else { return }
                for row in 0..<rect.height {
                    let start = ((rect.y + row) * width + rect.x) * bpp
                    guard start >= 0, start + rowBytes <= src.count else { return }
                    (to + row * rowBytes).update(from: from + start, count: rowBytes)
                }
            }
        }
        return out
    }
}
