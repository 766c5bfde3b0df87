import Foundation
import SightlineCore
import SightlineMedia

/// The edge side of frame transfer: per source, the picture the core holds (kept as a
/// `RegionSelector`'s reference, updated only where tiles were sent), and the JPEG of what
/// changed since. The counterpart of `FrameRebuilder`; no I/O, so tests run both ends.
public struct FramePacker {
    private var selectors: [String: RegionSelector] = [:]
    private var lastWhole: [String: Double] = [:]
    private var sequence: [String: Int] = [:]
    private let makeSelector: () -> RegionSelector
    private let wholeEvery: Double
    private let jpeg: JPEGEncoder

    public init(tileSize: Int = 16, threshold: Double = 12, minChangedPixels: Double = 0.1, wholeAbove: Double = 0.6, wholeEvery: Double = 60, qscale: Int = 8) {
        // No skip floor and no periodic refresh by frame count: time decides (`wholeEvery`).
        makeSelector = {
            RegionSelector(tileSize: tileSize, threshold: threshold, minChangedPixels: minChangedPixels, skipBelow: 0, fullAbove: wholeAbove,
                           refreshEvery: Int.max / 2)
        }
        self.wholeEvery = wholeEvery
        jpeg = JPEGEncoder(qscale: qscale)
    }

    public mutating func forget(_ source: String) {
        selectors[source] = nil
        lastWhole[source] = nil
        sequence[source] = nil
    }

    /// What of `frame` crosses: the whole picture, the changed rectangles, or only its time.
    /// `forceWhole`: the core's picture is stale (a message was dropped).
    public mutating func pack(_ frame: Frame, forceWhole: Bool = false) throws -> (LinkCodec.FrameInfo, [Data]) {
        let source = frame.sourceID
        var selector = selectors[source] ?? makeSelector()
        if forceWhole || (wholeEvery > 0 && frame.seconds - (lastWhole[source] ?? -.infinity) >= wholeEvery) { selector.requestRefresh() }
        let decision = selector.push(frame)
        selectors[source] = selector
        var transfer = LinkCodec.Transfer.full
        var rects: [LinkCodec.Rect] = []
        if !decision.refresh {
            rects = decision.skip ? [] : TileCover.rects(decision.tiles, width: frame.width, height: frame.height)
            transfer = rects.isEmpty ? .unchanged : .tiles
        } else {
            lastWhole[source] = frame.seconds
        }
        var parts: [Data] = []
        var places: [LinkCodec.Rect] = []
        switch transfer {
        case .full:
            parts = [try jpeg.encodeFullSize(frame.pixels, width: frame.width, height: frame.height, format: frame.pixelFormat)]
        case .tiles:
            let layout = MosaicLayout.layout(rects, maxWidth: frame.width)
            guard var mosaic = FrameCanvas(width: layout.width, height: layout.height, format: frame.pixelFormat,
                                           pixels: [UInt8](repeating: 0, count: layout.width * layout.height * frame.pixelFormat.bytesPerPixel)) else {
                throw SightlineError.decoderFailed(input: frame.sourceID, reason: "cannot lay out \(rects.count) changed rectangles")
            }
            for (rect, place) in zip(rects, layout.places) {
                mosaic.paste(FrameCanvas.crop(frame.pixels, width: frame.width, format: frame.pixelFormat, rect: rect), at: place)
            }
            places = layout.places
            parts = [try jpeg.encodeFullSize(mosaic.pixels, width: layout.width, height: layout.height, format: frame.pixelFormat)]
        case .unchanged:
            break
        }
        let next = (sequence[source] ?? 0) + 1
        sequence[source] = next
        var metadata = frame.metadata
        metadata[LinkReceiveNode.sequenceKey] = String(next)
        // The media's URL may hold credentials (rtsp://user:pass@…) and names a path or an
        // in-process audio tap that mean nothing on the core: neither leaves the edge.
        metadata[VideoSourceNode.urlKey] = nil
        metadata[VideoSourceNode.audioTapKey] = nil
        let info = LinkCodec.FrameInfo(sourceID: source, decodeIndex: frame.decodeIndex, timestamp: frame.timestamp, seconds: frame.seconds,
                                       ingestWallClock: frame.ingestWallClock, isKeyframe: frame.isKeyframe, width: frame.width, height: frame.height,
                                       pixelFormat: frame.pixelFormat, metadata: metadata, gapBefore: frame.gapBefore, transfer: transfer, rects: rects,
                                       mosaic: places)
        return (info, parts)
    }
}

/// The core side's pictures, one per source, and the frames rebuilt from link messages. Pure
/// apart from JPEG decoding; every size is checked before it is allocated.
public struct FrameRebuilder {
    public enum Outcome {
        case frame(Frame)
        /// A tiles or unchanged frame without the picture it builds on.
        case missingBase(String)
    }

    public let maxPixels: Int
    private var canvases: [String: FrameCanvas] = [:]
    private var lastSequence: [String: Int] = [:]
    private let decoder: JPEGDecoder

    public init(maxPixels: Int) {
        self.maxPixels = maxPixels
        decoder = JPEGDecoder(maxPixels: maxPixels)
    }

    public mutating func forget(_ source: String) {
        canvases[source] = nil
        lastSequence[source] = nil
    }

    public mutating func frame(from message: LinkCodec.Message) throws -> Outcome {
        guard let info = message.header.frame else { throw LinkCodec.DecodeError.malformed("a frame message without its frame") }
        guard info.width > 0, info.height > 0, info.width <= 16384, info.height <= 16384, info.width * info.height <= maxPixels else {
            throw LinkCodec.DecodeError.malformed("a \(info.width)x\(info.height) frame is larger than max_pixels (\(maxPixels))")
        }
        let source = info.sourceID
        let sequence = info.metadata[LinkReceiveNode.sequenceKey].flatMap(Int.init)
        let follows = sequence != nil && lastSequence[source].map { $0 + 1 == sequence } ?? false
        lastSequence[source] = sequence
        switch info.transfer {
        case .full:
            guard message.parts.count == 1 else { throw LinkCodec.DecodeError.malformed("a whole picture in \(message.parts.count) parts") }
            let picture = try decoder.decode(message.parts[0], format: info.pixelFormat)
            guard picture.width == info.width, picture.height == info.height,
                  let canvas = FrameCanvas(width: info.width, height: info.height, format: info.pixelFormat, pixels: picture.pixels) else {
                throw LinkCodec.DecodeError.malformed("the picture is \(picture.width)x\(picture.height), the frame \(info.width)x\(info.height)")
            }
            canvases[source] = canvas
        case .tiles, .unchanged:
            guard follows, var canvas = canvases[source], canvas.matches(width: info.width, height: info.height, format: info.pixelFormat) else {
                // The picture it builds on is gone: wait for the next whole one.
                canvases[source] = nil
                return .missingBase(source)
            }
            guard info.rects.count == info.mosaic.count, message.parts.count == (info.rects.isEmpty ? 0 : 1) else {
                throw LinkCodec.DecodeError.malformed("\(info.rects.count) rectangles, \(info.mosaic.count) places and \(message.parts.count) pictures")
            }
            if let part = message.parts.first {
                let mosaic = try decoder.decode(part, format: info.pixelFormat)
                for (rect, place) in zip(info.rects, info.mosaic) {
                    // Checked before the crop reads: the place lies in the mosaic, the sizes agree.
                    guard place.width == rect.width, place.height == rect.height, place.x >= 0, place.y >= 0,
                          place.x <= mosaic.width - place.width, place.y <= mosaic.height - place.height,
                          canvas.paste(FrameCanvas.crop(mosaic.pixels, width: mosaic.width, format: info.pixelFormat, rect: place), at: rect) else {
                        canvases[source] = nil
                        throw LinkCodec.DecodeError.malformed("rectangle \(rect) does not fit its place \(place) in a \(mosaic.width)x\(mosaic.height) mosaic")
                    }
                }
            }
            canvases[source] = canvas
        }
        guard let canvas = canvases[source] else { return .missingBase(source) }
        var frame = Frame(sourceID: source, decodeIndex: info.decodeIndex, timestamp: info.timestamp, seconds: info.seconds,
                          ingestWallClock: info.ingestWallClock, isKeyframe: info.isKeyframe, width: info.width, height: info.height,
                          pixelFormat: info.pixelFormat, pixels: canvas.pixels, metadata: info.metadata)
        frame.metadata[LinkReceiveNode.transferKey] = info.transfer.rawValue
        frame.gapBefore = info.gapBefore
        return .frame(frame)
    }
}
