import Foundation
import SightlineCore
import SightlineGraph
import Testing
@testable import SightlineNodes

/// The edge link without a network: covering changed tiles, the mosaic, the message format
/// (and what it refuses), frames packed on the edge and rebuilt on the core, and the split of
/// a pipeline file into its two sides.
@Suite struct EdgeLinkTests {
    // MARK: tile cover and mosaic

    /// Random masks: the rectangles cover exactly the changed tiles, none twice.
    @Test func theCoverHoldsExactlyTheChangedTiles() {
        var seed: UInt64 = 42
        for round in 0..<200 {
            let columns = 1 + round % 13, rows = 1 + (round / 13) % 11
            var bits: [Bool] = []
            for _ in 0..<(columns * rows) {
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                bits.append(seed >> 61 < 3)
            }
            let mask = TileMask(tileSize: 8, columns: columns, rows: rows, bits: bits)
            let rects = TileCover.rects(mask, width: columns * 8, height: rows * 8)
            var covered = [Int](repeating: 0, count: bits.count)
            for rect in rects {
                #expect(rect.x % 8 == 0 && rect.y % 8 == 0 && rect.width % 8 == 0 && rect.height % 8 == 0)
                for row in (rect.y / 8)..<((rect.y + rect.height) / 8) {
                    for column in (rect.x / 8)..<((rect.x + rect.width) / 8) { covered[row * columns + column] += 1 }
                }
            }
            #expect(covered == bits.map { $0 ? 1 : 0 }, "round \(round)")
        }
    }

    @Test func rectanglesAtARaggedFrameEdgeAreClippedAndAtLeastTwoPixels() {
        // 33x17 pixels in 16-pixel tiles: the last column and row are 1 pixel.
        let mask = TileMask(tileSize: 16, columns: 3, rows: 2, bits: [false, false, true, false, false, true])
        let rects = TileCover.rects(mask, width: 33, height: 17)
        #expect(rects == [LinkCodec.Rect(x: 31, y: 0, width: 2, height: 17)])
    }

    @Test func mosaicPlacesDoNotOverlapAndSitOnTheGrid() {
        let rects = (0..<23).map { LinkCodec.Rect(x: 0, y: 0, width: 16 * (1 + $0 % 5) - ($0 % 3), height: 16 * (1 + $0 % 3)) }
        let layout = MosaicLayout.layout(rects, maxWidth: 100)
        #expect(layout.places.count == rects.count)
        for (i, a) in layout.places.enumerated() {
            #expect(a.x % 16 == 0 && a.y % 16 == 0)
            #expect(a.width == rects[i].width && a.height == rects[i].height)
            #expect(a.x + a.width <= layout.width && a.y + a.height <= layout.height)
            for b in layout.places[(i + 1)...] {
                #expect(!(a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height), "\(a) overlaps \(b)")
            }
        }
    }

    // MARK: messages

    @Test func aRecordWithAVectorRoundTripsExactly() throws {
        var vector = (0..<1280).map { Float($0) * 0.001 - 0.5 }
        vector[7] = .nan
        let embedding = Embedding(space: "efficientnet-lite0/1280", scope: .frame(index: 12), vector: vector)
        let record = Record(.embedding(embedding), sourceID: "cam", start: 1.5, end: 1.5, ingestWallClock: 100, provenance: [Provenance(name: "m", version: "1")])
        let data = try LinkCodec.encode(record: record, sentAt: 3)
        // float32 bytes, not JSON numbers: the vector costs 4 bytes a value.
        #expect(data.count < 1280 * 4 + 1000)
        let back = try LinkCodec.record(of: try LinkCodec.decode(data))
        guard case .embedding(let e) = back.value else { Issue.record("not an embedding"); return }
        #expect(e.vector.count == 1280 && e.vector[7].isNaN && e.vector[8] == vector[8] && e.vector[1279] == vector[1279])
        #expect(back.sourceID == "cam" && back.start == 1.5 && back.provenance == record.provenance)
    }

    @Test func damagedMessagesAreRefusedNotTrusted() throws {
        let record = Record(.nsfw(NSFWScore(frameIndex: 3, score: 0.25)), sourceID: "cam", start: 0, end: 0)
        let good = try LinkCodec.encode(record: record, sentAt: 0)
        _ = try LinkCodec.decode(good)
        #expect(throws: LinkCodec.DecodeError.self) { try LinkCodec.decode(Data()) }
        #expect(throws: LinkCodec.DecodeError.self) { try LinkCodec.decode(Data([0xff, 0xff, 0xff, 0xff, 1, 2])) }
        #expect(throws: LinkCodec.DecodeError.self) { try LinkCodec.decode(good.prefix(good.count - 3)) }
        #expect(throws: LinkCodec.DecodeError.self) { try LinkCodec.decode(good + Data([0])) }
        // Every byte flipped in turn: an error or a message, never a crash.
        for i in 0..<good.count {
            var bad = good
            bad[i] ^= 0x5a
            _ = try? LinkCodec.decode(bad)
        }
        // A tile mask whose bits do not match its grid is refused.
        let mask = #"{"tileSize":16,"columns":4,"rows":4,"hex":"ff"}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(TileMask.self, from: Data(mask.utf8)) }
    }

    // MARK: frames across the link

    static let width = 160, height = 120

    /// A textured background and a textured square moving right: what a still camera sees.
    static func frame(_ index: Int, squareAt x: Int) -> Frame {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for px in 0..<width {
                var v = 60 + (px * 3 + y * 2) % 90 + ((px / 8 + y / 8) % 2) * 20
                if px >= x && px < x + 24 && y >= 40 && y < 64 { v = 200 + ((px - x) * 7 + y * 5) % 50 }
                for c in 0..<3 { pixels[(y * width + px) * 3 + c] = UInt8(clamping: v + c * 10) }
            }
        }
        return Frame(sourceID: "cam", decodeIndex: index, timestamp: Timestamp(pts: Int64(index), timeBase: Rational(1, 2)),
                     seconds: Double(index) / 2, ingestWallClock: 0, isKeyframe: index == 0, width: width, height: height,
                     pixelFormat: .rgb24, pixels: pixels)
    }

    static func psnr(_ a: [UInt8], _ b: [UInt8]) -> Double {
        let mse = zip(a, b).reduce(0.0) { $0 + pow(Double($1.0) - Double($1.1), 2) } / Double(a.count)
        return mse == 0 ? .infinity : 10 * log10(255 * 255 / mse)
    }

    @Test func framesRebuiltOnTheCoreMatchTheEdgesAndOnlyChangesTravel() throws {
        var packer = FramePacker(wholeEvery: 0, qscale: 4)
        var rebuilder = FrameRebuilder(maxPixels: 1 << 20)
        var transfers: [LinkCodec.Transfer] = []
        var bytes: [Int] = []
        for index in 0..<12 {
            // Still for frames 4–6: nothing but the frame's time crosses.
            var original = Self.frame(index, squareAt: 10 + 8 * min(max(index, 0), 4) + 8 * max(0, index - 6))
            original.metadata[VideoSourceNode.urlKey] = "rtsp://admin:secret@10.0.0.5/stream"
            original.metadata[VideoSourceNode.audioTapKey] = "tap-id"
            let (info, parts) = try packer.pack(original)
            let data = try LinkCodec.encode(LinkCodec.Header(version: LinkCodec.version, kind: .frame, frame: info, parts: [], sentAt: 0), parts: parts)
            bytes.append(data.count)
            transfers.append(info.transfer)
            guard case .frame(let rebuilt) = try rebuilder.frame(from: try LinkCodec.decode(data)) else {
                Issue.record("frame \(index) not rebuilt")
                return
            }
            #expect(rebuilt.decodeIndex == index && rebuilt.seconds == original.seconds && rebuilt.width == Self.width)
            #expect(rebuilt.metadata[LinkReceiveNode.transferKey] == info.transfer.rawValue)
            #expect(rebuilt.metadata[VideoSourceNode.urlKey] == nil && rebuilt.metadata[VideoSourceNode.audioTapKey] == nil,
                    "the source's URL (credentials) and tap stay on the edge")
            #expect(String(decoding: data, as: UTF8.self).contains("secret") == false)
            let quality = Self.psnr(rebuilt.pixels, original.pixels)
            #expect(quality > 30, "frame \(index): PSNR \(quality) dB")
        }
        #expect(transfers[0] == .full)
        #expect(transfers[5] == .unchanged && transfers[6] == .unchanged)
        #expect(transfers[1...4].allSatisfy { $0 == .tiles } && transfers[7...].allSatisfy { $0 == .tiles })
        // A moving square's tiles cost a fraction of the whole picture; a still frame, almost nothing.
        #expect(bytes[2] * 3 < bytes[0] && bytes[5] < 1000, "\(bytes)")
    }

    @Test func aLostMessageStopsTheChainUntilTheNextWholePicture() throws {
        var packer = FramePacker(wholeEvery: 0, qscale: 6)
        var rebuilder = FrameRebuilder(maxPixels: 1 << 20)
        func message(_ frame: Frame, forceWhole: Bool = false) throws -> LinkCodec.Message {
            let (info, parts) = try packer.pack(frame, forceWhole: forceWhole)
            return try LinkCodec.decode(try LinkCodec.encode(LinkCodec.Header(version: 1, kind: .frame, frame: info, parts: [], sentAt: 0), parts: parts))
        }
        guard case .frame = try rebuilder.frame(from: try message(Self.frame(0, squareAt: 10))) else { Issue.record("first frame"); return }
        _ = try message(Self.frame(1, squareAt: 20))   // lost on the way
        guard case .missingBase("cam") = try rebuilder.frame(from: try message(Self.frame(2, squareAt: 30))) else {
            Issue.record("a frame after a lost one was pasted on a stale picture")
            return
        }
        // The sender learns of the loss (its buffer dropped it) and starts over with a whole picture.
        guard case .frame(let back) = try rebuilder.frame(from: try message(Self.frame(3, squareAt: 40), forceWhole: true)) else {
            Issue.record("the whole picture did not restart the chain")
            return
        }
        #expect(Self.psnr(back.pixels, Self.frame(3, squareAt: 40).pixels) > 30)
    }

    @Test func rectanglesOutsideTheFrameOrTheMosaicAreRefused() throws {
        var packer = FramePacker(wholeEvery: 0)
        var rebuilder = FrameRebuilder(maxPixels: 1 << 20)
        let (first, firstParts) = try packer.pack(Self.frame(0, squareAt: 10))
        _ = try rebuilder.frame(from: LinkCodec.Message(header: .init(version: 1, kind: .frame, frame: first, parts: [], sentAt: 0), parts: firstParts))
        var (info, parts) = try packer.pack(Self.frame(1, squareAt: 30))
        #expect(info.transfer == .tiles)
        info.rects[0].x = Self.width - 4   // pasted past the right edge
        #expect(throws: LinkCodec.DecodeError.self) {
            try rebuilder.frame(from: LinkCodec.Message(header: .init(version: 1, kind: .frame, frame: info, parts: [], sentAt: 0), parts: parts))
        }
        var huge = first
        huge.width = 100_000
        #expect(throws: LinkCodec.DecodeError.self) {
            try rebuilder.frame(from: LinkCodec.Message(header: .init(version: 1, kind: .frame, frame: huge, parts: [], sentAt: 0), parts: firstParts))
        }
        parts = [Data("not a jpeg".utf8)]
        var whole = first
        whole.metadata[LinkReceiveNode.sequenceKey] = "9"
        #expect(throws: (any Error).self) {
            try rebuilder.frame(from: LinkCodec.Message(header: .init(version: 1, kind: .frame, frame: whole, parts: [], sentAt: 0), parts: parts))
        }
    }

    // MARK: splitting a pipeline

    static let splitText = """
    pipeline: cam-split
    link: {url: "nats://127.0.0.1:4222", qscale: 9}
    nodes:
      cam: {type: source, url: clip.mp4, at: edge, fps: 2}
      people: {type: people, at: edge}
      labels: {type: labels}
      captions: {type: captions, window: 4}
      out: {type: jsonl, path: out.jsonl}
    edges:
      - cam -> people
      - people -> labels
      - labels -> captions
      - captions -> out
    """

    static func whole(_ text: String = splitText) throws -> ValidatedPipeline {
        let folder = NSTemporaryDirectory() + "sightline-split-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: folder + "/clip.mp4", contents: Data([0]))
        let (spec, diagnostics) = PipelineParser.parse(text: text, file: folder + "/split.yaml")
        guard let spec, diagnostics.isEmpty else { throw Diagnostics(items: diagnostics) }
        return try PipelineValidator.validate(spec, registry: BuiltinNodes.registry).get()
    }

    @Test func theEdgeSideEndsInALinkAndTheCoreSideStartsFromOne() throws {
        let whole = try Self.whole()
        let edge = try PipelineSplit.split(whole, role: .edge).get()
        #expect(edge.crossing == ["people"])
        #expect(Set(edge.spec.nodes.map(\.id)) == ["cam", "people", "people.link"])
        let send = try #require(edge.spec.node("people.link"))
        #expect(send.type == "link_send" && send.option("subject")?.value == "sightline_link.cam-split.people")
        #expect(send.option("qscale")?.value == "9")
        _ = try PipelineValidator.validate(edge.spec, registry: BuiltinNodes.registry).get()

        let core = try PipelineSplit.split(whole, role: .core, linkURL: "nats://core:4222").get()
        #expect(Set(core.spec.nodes.map(\.id)) == ["edge.people", "labels", "captions", "out"])
        let receive = try #require(core.spec.node("edge.people"))
        #expect(receive.option("url")?.value == "nats://core:4222" && receive.option("qscale") == nil)
        #expect(receive.option("carries")?.value.split(separator: ",").contains("people") == true)
        #expect(core.spec.edges.contains { $0.from == "edge.people" && $0.to == "labels" })
        // The core's contract checks pass: people results come over the link.
        _ = try PipelineValidator.validate(core.spec, registry: BuiltinNodes.registry).get()
    }

    @Test func aSplitThatFlowsBackOrHasNoServerIsRefusedWithPlaces() throws {
        let back = Self.splitText.replacingOccurrences(of: "labels: {type: labels}", with: "labels: {type: labels, at: edge}")
            .replacingOccurrences(of: "people: {type: people, at: edge}", with: "people: {type: people}")
        let failure = try #require(PipelineSplit.split(try Self.whole(back), role: .edge).failure)
        #expect(failure.items.contains { $0.message.contains("'cam -> people' goes from the core back to the edge") == false
            && $0.message.contains("'people -> labels' goes from the core back to the edge") })

        let noURL = Self.splitText.replacingOccurrences(of: #"link: {url: "nats://127.0.0.1:4222", qscale: 9}"#, with: "link: {qscale: 9, colour: red}")
        let problems = try #require(PipelineSplit.split(try Self.whole(noURL), role: .core).failure).items.map(\.message)
        #expect(problems.contains { $0.contains("needs the NATS server") })
        #expect(problems.contains { $0.contains("unknown link setting 'colour'") })

        let nothing = Self.splitText.replacingOccurrences(of: ", at: edge", with: "")
        #expect(PipelineSplit.split(try Self.whole(nothing), role: .edge).failure?.items.first?.message.contains("no node") == true)
    }

    @Test func anEdgeOnlySourceIsNamedToTheLinkAndMustRunOnTheEdge() throws {
        let text = Self.splitText.replacingOccurrences(of: "at: edge, fps: 2}", with: "at: edge, fps: 2, privacy: edge-only}")
        let edge = try PipelineSplit.split(try Self.whole(text), role: .edge).get()
        #expect(edge.spec.node("people.link")?.option("private_sources")?.value == "cam")
        #expect(edge.notices.contains { $0.contains("no redact node") })
        let onCore = text.replacingOccurrences(of: "cam: {type: source, url: clip.mp4, at: edge,", with: "cam: {type: source, url: clip.mp4,")
            .replacingOccurrences(of: "people: {type: people, at: edge}", with: "people: {type: people}")
            .replacingOccurrences(of: "labels: {type: labels}", with: "labels: {type: labels}\n  x: {type: frame_stats, at: edge}")
        let problems = PipelineSplit.split(try Self.whole(onCore.replacingOccurrences(of: "- captions -> out", with: "- captions -> out\n  - cam -> x\n  - x -> out")),
                                           role: .edge).failure?.items.map(\.message) ?? []
        #expect(problems.contains { $0.contains("is `privacy: edge-only` but runs on the core") })
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
