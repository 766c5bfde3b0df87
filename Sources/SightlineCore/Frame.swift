import Foundation

/// Pixel layouts a converted frame can carry. Packed formats only: every model node reads
/// interleaved bytes, and planar YUV never leaves SightlineMedia.
public enum PixelFormat: String, Sendable, Codable, CaseIterable {
    case rgb24
    case bgr24
    case gray8

    public var bytesPerPixel: Int {
        switch self {
        case .rgb24, .bgr24: 3
        case .gray8: 1
        }
    }
}

/// A decoded, converted video frame and everything downstream nodes need to place it in time.
public struct Frame: Sendable {
    public var sourceID: String
    /// Index among the frames the decoder produced for this source (before sampling). A file
    /// sampled shot-aware with `mode: nonref` counts the frames it skipped too (from the
    /// timestamps' spacing), so the index stays the frame's place in the file.
    public var decodeIndex: Int
    public var timestamp: Timestamp
    /// Seconds on the output timeline. Equal to `timestamp.seconds` for files; for live sources
    /// it stays monotonic across timestamp resets and reconnects.
    public var seconds: Double
    /// Wall-clock time (Unix seconds) at which the frame's packet was read from the source.
    public var ingestWallClock: Double
    public var isKeyframe: Bool
    public var width: Int
    public var height: Int
    public var pixelFormat: PixelFormat
    /// Tightly packed rows: `width * pixelFormat.bytesPerPixel` bytes each.
    public var pixels: [UInt8]
    /// Results annotated by nodes, keyed `sl.<node>.<field>` (the FFmpeg `lavfi.*` habit).
    public var metadata: [String: String]
    /// Seconds a live source was without data just before this frame (its first frame after
    /// an outage); nil when the frame follows the previous one without a loss. Segments
    /// (shots, caption windows) end at an outage rather than span it.
    public var gapBefore: Double?

    public init(
        sourceID: String, decodeIndex: Int, timestamp: Timestamp, seconds: Double,
        ingestWallClock: Double, isKeyframe: Bool, width: Int, height: Int,
        pixelFormat: PixelFormat, pixels: [UInt8], metadata: [String: String] = [:]
    ) {
        self.sourceID = sourceID
        self.decodeIndex = decodeIndex
        self.timestamp = timestamp
        self.seconds = seconds
        self.ingestWallClock = ingestWallClock
        self.isKeyframe = isKeyframe
        self.width = width
        self.height = height
        self.pixelFormat = pixelFormat
        self.pixels = pixels
        self.metadata = metadata
    }

    public var rowBytes: Int { width * pixelFormat.bytesPerPixel }
}

/// A requested frame size, written `WxH`, `Wx` or `xH` (a missing side follows the source's
/// aspect ratio). Shared by the CLI and pipeline options.
public struct FrameSize: Sendable, Equatable {
    public var width: Int?
    public var height: Int?

    public init?(parsing text: String) {
        let parts = text.trimmingCharacters(in: .whitespaces).lowercased().split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        let w = parts[0].isEmpty ? nil : Int(parts[0])
        let h = parts[1].isEmpty ? nil : Int(parts[1])
        if (!parts[0].isEmpty && w == nil) || (!parts[1].isEmpty && h == nil) { return nil }
        guard w != nil || h != nil, (1...16384).contains(w ?? 1), (1...16384).contains(h ?? 1) else { return nil }
        width = w
        height = h
    }
}

extension Frame {
    /// The pixels inside `box` (clipped to the frame, whole pixels) as a frame of their own, with
    /// this frame's identity and time; nil when nothing of the box is inside the frame.
    public func cropped(to box: PixelBox) -> Frame? {
        let inside = box.clipped(width: width, height: height)
        let x0 = Int(inside.x.rounded(.down)), y0 = Int(inside.y.rounded(.down))
        let x1 = Int((inside.x + inside.width).rounded(.up)), y1 = Int((inside.y + inside.height).rounded(.up))
        guard x1 > x0, y1 > y0, pixels.count >= rowBytes * height else { return nil }
        let bpp = pixelFormat.bytesPerPixel, cropRow = (x1 - x0) * bpp
        var out = [UInt8](repeating: 0, count: cropRow * (y1 - y0))
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for row in 0..<(y1 - y0) {
                    let from = (y0 + row) * rowBytes + x0 * bpp
                    dst.baseAddress!.advanced(by: row * cropRow).update(from: src.baseAddress!.advanced(by: from), count: cropRow)
                }
            }
        }
        var frame = self
        frame.width = x1 - x0
        frame.height = y1 - y0
        frame.pixels = out
        return frame
    }
}
