import Testing
import SightlineCore
import SightlineMedia
import SightlineTestSupport

@Suite struct DecodeModeTests {
    @Test func allDecodesEveryFrame() throws {
        let clip = Fixtures.small
        let run = try decodeAll(try Fixtures.shared.clip(clip))
        #expect(run.frames.count == clip.frameCount)
        #expect(run.stats.framesDecoded == clip.frameCount)
        #expect(run.stats.corruptPackets == 0 && run.stats.corruptFrames == 0)
    }

    @Test(arguments: [1, 2])
    func keyframesDecodesOnlyKeyframes(threads: Int) throws {
        let clip = Fixtures.small
        let path = try Fixtures.shared.clip(clip)
        let expectedKeys = try FFprobe.frames(path).filter(\.isKey)
        let run = try decodeAll(path, SourceOptions(mode: .keyframes, threads: threads, output: nil))
        let keyframeCount = clip.frameCount / clip.gop
        #expect(run.frames.count == keyframeCount)
        #expect(run.frames.map(\.timestamp.pts) == expectedKeys.compactMap(\.bestEffort))
        let allKey = run.frames.allSatisfy(\.isKeyframe)
        #expect(allKey)
        // Nothing but keyframes reached the decoder.
        #expect(run.stats.framesDecoded == run.frames.count)
        #expect(run.stats.packetsSkipped == clip.frameCount - run.frames.count)
    }

    @Test func nonrefMatchesFFmpegsOwnSkip() throws {
        let clip = Fixtures.small
        let path = try Fixtures.shared.clip(clip)
        let expected = try FFprobe.frames(path, extra: ["-skip_frame", "noref"])
        let run = try decodeAll(path, SourceOptions(mode: .nonref, output: nil))
        #expect(run.frames.count == expected.count)
        #expect(run.frames.map(\.timestamp.pts) == expected.compactMap(\.bestEffort))
        #expect(run.frames.count < clip.frameCount)
        #expect(run.frames.count > clip.frameCount / clip.gop)
    }

    @Test func samplerPicksExactFramesPerSecond() throws {
        let clip = Fixtures.small  // 30 fps, 3 s
        let run = try decodeAll(try Fixtures.shared.clip(clip),
                                SourceOptions(sampling: .perSecond(Rational(2, 1)), output: OutputFormat(width: 32, height: 24)))
        #expect(run.frames.map(\.decodeIndex) == [0, 15, 30, 45, 60, 75])
        #expect(run.frames.map(\.seconds) == [0, 0.5, 1, 1.5, 2, 2.5])
        #expect(run.stats.framesSampledOut == clip.frameCount - 6)
        let allConverted = run.frames.allSatisfy { $0.pixels.count == 32 * 24 * 3 }
        #expect(allConverted)
    }

    @Test func samplerPicksEveryNth() throws {
        let run = try decodeAll(try Fixtures.shared.clip(Fixtures.hd), SourceOptions(sampling: .everyNth(7), output: nil))
        #expect(run.frames.map(\.decodeIndex) == Array(stride(from: 0, to: 50, by: 7)))
    }

    @Test func samplerOnAStreamStartingLate() throws {
        // 25 fps from 1.4 s, one frame per second: 1.4, 2.4, 3.4.
        let run = try decodeAll(try Fixtures.shared.clip(Fixtures.offsetTS), SourceOptions(sampling: .perSecond(Rational(1, 1)), output: nil))
        #expect(run.frames.map(\.decodeIndex) == [0, 25, 50])
    }

    @Test func droppedFramesAreNeverConverted() throws {
        // Conversion happens only for kept frames: every kept frame has pixels, and the counts add up.
        let run = try decodeAll(try Fixtures.shared.clip(Fixtures.hd),
                                SourceOptions(sampling: .everyNth(10), output: OutputFormat(width: 64, height: 36)))
        #expect(run.stats.framesEmitted == 5)
        #expect(run.stats.framesEmitted + run.stats.framesSampledOut == run.stats.framesDecoded)
    }
}

@Suite struct ConversionTests {
    private func firstFrame(_ path: String, _ output: OutputFormat) throws -> Frame {
        let run = try decodeAll(path, SourceOptions(sampling: .everyNth(1000), output: output))
        return try #require(run.frames.first)
    }

    private func pixel(_ frame: Frame, x: Int, y: Int) -> [UInt8] {
        let bpp = frame.pixelFormat.bytesPerPixel
        let offset = (y * frame.width + x) * bpp
        return Array(frame.pixels[offset..<offset + bpp])
    }

    private func near(_ a: [UInt8], _ b: [Int], tolerance: Int = 6) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs(Int($0) - $1) <= tolerance }
    }

    @Test func rgbAndBgrChannelOrder() throws {
        let path = try Fixtures.shared.solid(color: "red", size: "320x240")
        let rgb = try firstFrame(path, OutputFormat(pixelFormat: .rgb24))
        #expect(rgb.width == 320 && rgb.height == 240 && rgb.pixels.count == 320 * 240 * 3)
        #expect(near(pixel(rgb, x: 160, y: 120), [255, 0, 0]))
        let bgr = try firstFrame(path, OutputFormat(pixelFormat: .bgr24))
        #expect(near(pixel(bgr, x: 160, y: 120), [0, 0, 255]))
        let gray = try firstFrame(path, OutputFormat(pixelFormat: .gray8))
        #expect(near(pixel(gray, x: 10, y: 10), [76], tolerance: 8))  // BT.601 luma of red
    }

    @Test func letterboxPadsWithBlack() throws {
        let path = try Fixtures.shared.solid(color: "red", size: "320x240")
        let frame = try firstFrame(path, OutputFormat(width: 224, height: 224, resize: .letterbox))
        #expect(frame.width == 224 && frame.height == 224)
        // 320x240 fits as 224x168, 28 rows of padding above and below.
        #expect(near(pixel(frame, x: 112, y: 5), [0, 0, 0], tolerance: 0))
        #expect(near(pixel(frame, x: 112, y: 218), [0, 0, 0], tolerance: 0))
        #expect(near(pixel(frame, x: 112, y: 112), [255, 0, 0]))
        #expect(near(pixel(frame, x: 2, y: 40), [255, 0, 0]))
    }

    @Test func cropFillsAndKeepsCentre() throws {
        // testsrc2 is not uniform, so compare a crop with the centre of the full-size frame.
        let path = try Fixtures.shared.clip(Fixtures.small)
        let full = try firstFrame(path, OutputFormat())
        let crop = try firstFrame(path, OutputFormat(width: 240, height: 240, resize: .crop))
        #expect(crop.width == 240 && crop.height == 240)
        // 320x240 covers 240x240 at scale 1: an exact copy of columns 40..<280.
        for y in stride(from: 0, to: 240, by: 37) {
            for x in stride(from: 0, to: 240, by: 29) {
                #expect(pixel(crop, x: x, y: y) == pixel(full, x: x + 40, y: y))
            }
        }
    }

    @Test func stretchChangesAspect() throws {
        let path = try Fixtures.shared.solid(color: "blue", size: "320x240")
        let frame = try firstFrame(path, OutputFormat(width: 100, height: 300))
        #expect(frame.width == 100 && frame.height == 300)
        #expect(near(pixel(frame, x: 0, y: 0), [0, 0, 255]))
        #expect(near(pixel(frame, x: 99, y: 299), [0, 0, 255]))
    }
}
