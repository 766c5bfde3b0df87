import Foundation
import Testing
import SightlineCore
import SightlineMedia
@testable import SightlineModels
import SightlineTestSupport

/// Reading only where a frame changed: the window planner (pure), the pixel comparison that
/// keeps a line's reading, and the windowed detector against the whole frame on rendered
/// screens.
@Suite(.serialized) struct OCRChangedTilesTests {
    static func mask(columns: Int, rows: Int, tileSize: Int = 16, changed: [(row: Int, column: Int)]) -> TileMask {
        var bits = [Bool](repeating: false, count: columns * rows)
        for t in changed { bits[t.row * columns + t.column] = true }
        return TileMask(tileSize: tileSize, columns: columns, rows: rows, bits: bits)
    }

    // 1280×720 frames (80×45 tiles of 16) read at 960×544.
    let planner = DetectionWindowPlanner(cell: 128, context: 64, influence: 32, maxCost: 0.5, sizeStep: 128)

    @Test func nothingChangedPlansNoWindow() {
        #expect(planner.windows(changed: Self.mask(columns: 80, rows: 45, changed: []), frameWidth: 1280, frameHeight: 720, width: 960, height: 544) == [])
    }

    @Test func oneTileInACornerGetsOneWindowInsideTheImage() throws {
        let windows = try #require(planner.windows(changed: Self.mask(columns: 80, rows: 45, changed: [(0, 0)]), frameWidth: 1280, frameHeight: 720, width: 960, height: 544))
        #expect(windows.count == 1)
        let w = try #require(windows.first)
        #expect(w.x == 0 && w.y == 0 && w.width == 256 && w.height == 256)
        #expect(w.keep.x0 == 0 && w.keep.y0 == 0 && w.keep.x1 == 128 && w.keep.y1 == 128)
    }

    @Test func aChangeAcrossACellBorderMakesOneRunWithContextAround() throws {
        // Tile (26, 30) is detection x 360–372, y 314–326; grown by 32 it touches cells 2–3 of row 2.
        let windows = try #require(planner.windows(changed: Self.mask(columns: 80, rows: 45, changed: [(26, 30)]), frameWidth: 1280, frameHeight: 720, width: 960, height: 544))
        #expect(windows.count == 1)
        let w = try #require(windows.first)
        #expect(w.keep.x0 == 256 && w.keep.x1 == 512 && w.keep.y0 == 256 && w.keep.y1 == 384)
        #expect(w.width == 2 * 128 + 128 && w.height == 128 + 128, "cells and context, rounded up to 128")
        #expect(w.x == 192 && w.y == 192)
    }

    @Test func theBottomRowSlidesItsWindowInside() throws {
        // Tile (44, 5): detection y 532–544, so rows 3 and 4 of the grid, one group.
        let windows = try #require(planner.windows(changed: Self.mask(columns: 80, rows: 45, changed: [(44, 5)]), frameWidth: 1280, frameHeight: 720, width: 960, height: 544))
        #expect(windows.count == 1)
        let w = try #require(windows.first)
        #expect(w.keep.y0 == 384 && w.keep.y1 == 544 && w.keep.x0 == 0 && w.keep.x1 == 128)
        #expect(w.y == 544 - 384 && w.height == 384 && w.x == 0 && w.width == 256, "160 + 128 rounds to 384, slid up from the edge")
    }

    @Test func tooMuchChangeRunsTheWholeFrame() {
        let half = (0..<45).flatMap { r in (0..<40).map { (r, $0) } }
        #expect(planner.windows(changed: Self.mask(columns: 80, rows: 45, changed: half), frameWidth: 1280, frameHeight: 720, width: 960, height: 544) == nil)
    }

    /// Any mask: windows start on the stride, stay inside, keep their own cells, and every
    /// changed tile (grown by the influence) is inside some window's kept area.
    @Test func windowsCoverEveryChangeOnTheStride() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let tiles = (0..<Int.random(in: 1...6, using: &generator)).map { _ in (Int.random(in: 0..<45, using: &generator), Int.random(in: 0..<80, using: &generator)) }
            guard let windows = planner.windows(changed: Self.mask(columns: 80, rows: 45, changed: tiles), frameWidth: 1280, frameHeight: 720, width: 960, height: 544) else { continue }
            for w in windows {
                #expect(w.x % 32 == 0 && w.y % 32 == 0 && w.x >= 0 && w.y >= 0 && w.x + w.width <= 960 && w.y + w.height <= 544)
                #expect(w.keep.x0 >= w.x && w.keep.y0 >= w.y && w.keep.x1 <= w.x + w.width && w.keep.y1 <= w.y + w.height)
                #expect(w.keep.x0 - w.x >= 64 || w.x == 0)
                #expect(w.x + w.width - w.keep.x1 >= 64 || w.x + w.width == 960)
            }
            for (row, column) in tiles {
                // Every point of the tile, grown by the influence, is in some window's kept area.
                let x0 = max(0, Double(column * 16) * 0.75 - 32), x1 = min(959, Double(column * 16 + 16) * 0.75 + 31)
                let y0 = max(0, Double(row * 16) * 544 / 720 - 32), y1 = min(543, Double(row * 16 + 16) * 544 / 720 + 31)
                for y in stride(from: y0, through: y1, by: 4) {
                    for x in stride(from: x0, through: x1, by: 4) {
                        let kept = windows.contains { Double($0.keep.x0) <= x && x < Double($0.keep.x1) && Double($0.keep.y0) <= y && y < Double($0.keep.y1) }
                        #expect(kept, "(\(x), \(y)) of tile \(row),\(column) not kept by \(windows)")
                        if !kept { return }
                    }
                }
            }
        }
    }

    @Test func samePixelsAllowsCodecNoiseButNotAChangedLetter() {
        let before = [UInt8]((0..<3000).map { UInt8($0 % 200) })
        let same = Crop(width: 100, height: 10, pixels: before.map(Float.init))
        #expect(TextRecognizer.samePixels(before, same))
        var noisy = same
        for i in stride(from: 0, to: 3000, by: 10) { noisy.pixels[i] += 3 }
        #expect(TextRecognizer.samePixels(before, noisy), "a few pixels off by 3: noise")
        var letter = same
        letter.pixels[1500] += 60
        #expect(!TextRecognizer.samePixels(before, letter), "one pixel far off: changed")
        var brighter = same
        for i in brighter.pixels.indices { brighter.pixels[i] += 2 }
        #expect(!TextRecognizer.samePixels(before, brighter), "everything 2 levels off: changed")
        #expect(!TextRecognizer.samePixels(before, Crop(width: 10, height: 10, pixels: [Float](repeating: 0, count: 300))))
    }

    // MARK: - The reader on rendered screens

    static let font = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
    static let log = ["Fetching dependencies", "Compiling the kernels", "Linking the command", "Running unit tests", "Packaging release"]

    /// A 1280×720 terminal showing the first `lines` lines of the log and a clock.
    static func screen(lines: Int, seconds: Int) throws -> Frame {
        let path = Fixtures.shared.directory + "/screen-\(lines)-\(seconds).png"
        var filters = ["drawtext=fontfile=\(font):text='Elapsed \(seconds) s':fontsize=28:fontcolor=white:x=1000:y=16"]
        for (i, line) in log.prefix(lines).enumerated() {
            filters.append("drawtext=fontfile=\(font):text='\(line)':fontsize=26:fontcolor=0x20e020:x=40:y=\(90 + i * 38)")
        }
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "color=c=0x101010:s=1280x720", "-vf", filters.joined(separator: ","), "-frames:v", "1", path])
        let source = VideoSource(url: path, options: SourceOptions(output: OutputFormat(pixelFormat: .rgb24)))
        while let event = try source.next() { if case .frame(let frame) = event { return frame } }
        throw SightlineError.noVideoStream(input: path)
    }

    /// Tiles where any channel of any pixel moved by more than 12 levels.
    static func changedTiles(_ a: Frame, _ b: Frame, tileSize: Int = 16) -> TileMask {
        let columns = (a.width + tileSize - 1) / tileSize, rows = (a.height + tileSize - 1) / tileSize
        var bits = [Bool](repeating: false, count: columns * rows)
        for y in 0..<a.height {
            for x in 0..<a.width where !bits[(y / tileSize) * columns + x / tileSize] {
                let i = (y * a.width + x) * 3
                if (0..<3).contains(where: { abs(Int(a.pixels[i + $0]) - Int(b.pixels[i + $0])) > 12 }) { bits[(y / tileSize) * columns + x / tileSize] = true }
            }
        }
        return TileMask(tileSize: tileSize, columns: columns, rows: rows, bits: bits)
    }

    static func reader() throws -> TextRecognizer {
        let store = ModelStore()
        try store.fetch(ModelZoo.ppOCR)
        return try TextRecognizer(store: store, threads: 1)
    }

    /// A new log line and a clock tick: the detector runs on under half the input and the text
    /// is what reading the whole frame gives; the lines away from the change keep their
    /// readings (the one just above the new line touches its tiles and is read again).
    @Test func aNewLineIsReadWithoutReadingTheRestAgain() throws {
        let reader = try Self.reader()
        reader.detectOnlyWhereChanged = true
        let before = try Self.screen(lines: 3, seconds: 20), after = try Self.screen(lines: 4, seconds: 21)
        var memory: TextRecognizer.TextMemory?
        let first = try reader.read(before, changed: nil, memory: &memory)
        #expect(first.map(\.text) == ["Elapsed 20 s"] + Self.log.prefix(3), "\(first.map(\.text))")
        let lines = try reader.read(after, changed: Self.changedTiles(before, after), memory: &memory)
        let work = reader.lastWork
        #expect(lines.map(\.text) == ["Elapsed 21 s"] + Self.log.prefix(4), "\(lines.map(\.text))")
        let whole = try reader.read(after)
        #expect(whole.map(\.text) == lines.map(\.text))
        #expect(work.detected < 0.5, "\(work)")
        #expect(lines.filter(\.kept).map(\.text) == Array(Self.log.prefix(2)))
        #expect(work.recognised == 3 && work.kept == 2, "\(work)")
    }

    /// Without a tile mask, a line keeps its reading only when its box and pixels are the same:
    /// the same frame again keeps every line; a changed line is read again.
    @Test func unchangedLinesKeepTheirReadingsWithoutAMask() throws {
        let reader = try Self.reader()
        let before = try Self.screen(lines: 3, seconds: 20)
        var memory: TextRecognizer.TextMemory?
        _ = try reader.read(before, changed: nil, memory: &memory)
        let again = try reader.read(before, changed: nil, memory: &memory)
        #expect(reader.lastWork.detected == 1 && reader.lastWork.kept == 4 && reader.lastWork.recognised == 0, "\(reader.lastWork)")
        let allKept = again.allSatisfy { $0.kept }
        #expect(allKept && again.count == 4)
        let tick = try reader.read(try Self.screen(lines: 3, seconds: 21), changed: nil, memory: &memory)
        #expect(tick.map(\.text) == ["Elapsed 21 s"] + Self.log.prefix(3))
        #expect(tick.filter { !$0.kept }.map(\.text) == ["Elapsed 21 s"], "only the clock is read again")
        reader.keepUnchangedLines = false
        _ = try reader.read(before, changed: nil, memory: &memory)
        #expect(reader.lastWork.kept == 0 && reader.lastWork.recognised == 4)
    }

    /// Running the detector with its global pools given (the values it computed itself) is the
    /// plain run: the pools kept are the ones the steps produced, and given ones are used.
    @Test func givenPoolsReproduceThePlainRun() throws {
        let reader = try Self.reader()
        let frame = try Self.screen(lines: 2, seconds: 3)
        let (input, dw, dh) = reader.detectionInput(ImagePreprocessing.packedPixels(frame, order: .bgr), width: 1280, height: 720)
        let plain = try reader.detect(input, width: dw, height: dh)
        let (kept, pools) = try reader.detectKeepingPools(input, width: dw, height: dh)
        #expect(pools.count == 10, "PP-OCRv4's detector has ten global average pools")
        #expect(kept == plain)
        let given = try reader.detector.run(Tensor(shape: [1, 3, dh, dw], data: input), given: pools, keeping: [])
        #expect(given.outputs.values.first?.data == plain)
        let zeroed = pools.mapValues { Tensor(shape: $0.shape, data: [Float](repeating: 0, count: $0.data.count)) }
        let other = try reader.detector.run(Tensor(shape: [1, 3, dh, dw], data: input), given: zeroed, keeping: [])
        #expect(other.outputs.values.first?.data != plain, "given values replace the computed ones")
    }

    /// What wakes a gated OCR node: a line it read shows other pixels (the clock ticked), not
    /// the same frame again, not a change away from every line, and nothing without memory.
    @Test func aKnownLineChangingIsNoticed() throws {
        let reader = try Self.reader()
        let before = try Self.screen(lines: 3, seconds: 20)
        #expect(!reader.linesChanged(before, since: nil))
        var memory: TextRecognizer.TextMemory?
        _ = try reader.read(before, changed: nil, memory: &memory)
        #expect(!reader.linesChanged(before, since: memory))
        #expect(reader.linesChanged(try Self.screen(lines: 3, seconds: 21), since: memory), "the clock's digits")
        #expect(!reader.linesChanged(try Self.screen(lines: 4, seconds: 20), since: memory), "a new line below the known ones")
    }

    /// A woken frame reads again, at their boxes and without detection, only the lines whose
    /// pixels changed.
    @Test func rereadingOnlyTheChangedLines() throws {
        let reader = try Self.reader()
        var memory: TextRecognizer.TextMemory?
        _ = try reader.read(try Self.screen(lines: 3, seconds: 20), changed: nil, memory: &memory)
        let lines = try reader.rereadChangedLines(try Self.screen(lines: 3, seconds: 21), memory: &memory)
        #expect(lines.map(\.text) == ["Elapsed 21 s"] + Self.log.prefix(3))
        #expect(lines.filter { !$0.kept }.map(\.text) == ["Elapsed 21 s"])
        #expect(reader.lastWork.detected == 0 && reader.lastWork.recognised == 1 && reader.lastWork.kept == 3, "\(reader.lastWork)")
        var none: TextRecognizer.TextMemory?
        let whole = try reader.rereadChangedLines(try Self.screen(lines: 3, seconds: 21), memory: &none)
        #expect(whole.map(\.text) == lines.map(\.text) && reader.lastWork.detected == 1, "no memory: the whole frame")
    }
}
