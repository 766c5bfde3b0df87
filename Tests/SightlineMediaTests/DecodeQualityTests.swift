import Foundation
import Testing
import SightlineCore
import SightlineMedia
import SightlineTestSupport

/// `quality: fast`: no loop filter, FFmpeg's fast flag, and a reduced decode size where the
/// codec has one. Frames and timestamps must not change; pixels may, a little.
@Suite struct DecodeQualityTests {
    @Test func lowresIsTheLargestStepThatStillCoversTheOutput() {
        // vtest.avi is 768×576: a quarter is 192×144, an eighth 96×72.
        #expect(DecodeQuality.lowres(sourceWidth: 768, sourceHeight: 576, output: (192, 144), codecMax: 3) == 2)
        #expect(DecodeQuality.lowres(sourceWidth: 768, sourceHeight: 576, output: (193, 144), codecMax: 3) == 1)
        #expect(DecodeQuality.lowres(sourceWidth: 768, sourceHeight: 576, output: (64, 48), codecMax: 3) == 3)
        #expect(DecodeQuality.lowres(sourceWidth: 768, sourceHeight: 576, output: (64, 48), codecMax: 1) == 1)
        // Either side too large for a half: none.
        #expect(DecodeQuality.lowres(sourceWidth: 768, sourceHeight: 576, output: (100, 300), codecMax: 3) == 0)
        #expect(DecodeQuality.lowres(sourceWidth: 768, sourceHeight: 576, output: nil, codecMax: 3) == 0)
        #expect(DecodeQuality.lowres(sourceWidth: 1280, sourceHeight: 720, output: (320, 180), codecMax: 0) == 0)
        #expect(DecodeQuality.lowres(sourceWidth: 0, sourceHeight: 0, output: (1, 1), codecMax: 3) == 0)
    }

    /// Both runs of a clip: the same frames at the same times, close but not identical pixels.
    private func compare(_ path: String, size: OutputFormat, frames: Int? = nil) throws -> (fast: DecodeRun, full: DecodeRun, psnr: Double, lowres: Int) {
        let full = try decodeAll(path, SourceOptions(output: size))
        let source = VideoSource(url: path, options: SourceOptions(quality: .fast, output: size))
        var fast = DecodeRun()
        while let event = try source.next() {
            if case .frame(let frame) = event { fast.frames.append(frame) }
            if case .endOfStream(let stats) = event { fast.stats = stats }
        }
        #expect(fast.frames.count == full.frames.count)
        #expect(fast.frames.map(\.timestamp.pts) == full.frames.map(\.timestamp.pts))
        var squared = 0.0, count = 0
        for (a, b) in zip(fast.frames, full.frames) {
            #expect(a.pixels.count == b.pixels.count)
            for (x, y) in zip(a.pixels, b.pixels) {
                let d = Double(x) - Double(y)
                squared += d * d
            }
            count += a.pixels.count
        }
        let mse = squared / Double(max(count, 1))
        return (fast, full, mse == 0 ? .infinity : 10 * log10(255 * 255 / mse), source.lowres)
    }

    /// MS-MPEG-4 (vtest.avi, 768×576) decodes at a quarter of each side for 192×144 frames.
    @Test func msmpeg4DecodesAtAQuarterForSmallFrames() throws {
        let result = try compare(try SampleVideos.path("vtest.avi"), size: OutputFormat(width: 192, height: 144))
        #expect(result.lowres == 2)
        #expect(result.fast.frames.count == 795)
        #expect(result.psnr > 25 && result.psnr.isFinite, "PSNR \(result.psnr) dB against the full decode scaled down")
    }

    /// H.264 has no reduced size; skipping its loop filter changes pixels a little.
    @Test func h264SkipsTheLoopFilterOnly() throws {
        let result = try compare(try SampleVideos.path("bigbuckbunny.mp4"), size: OutputFormat(width: 320))
        #expect(result.lowres == 0)
        #expect(result.psnr > 30 && result.psnr.isFinite, "PSNR \(result.psnr) dB against the full decode")
    }

    /// Without a size the frames keep the source's, so nothing is decoded smaller.
    @Test func noReductionWithoutASize() throws {
        let source = VideoSource(url: try SampleVideos.path("vtest.avi"), options: SourceOptions(quality: .fast, output: OutputFormat()))
        guard case .opened = try source.next() else { Issue.record("the source did not open first"); return }
        guard case .frame(let frame) = try source.next() else { Issue.record("no frame"); return }
        #expect(source.lowres == 0)
        #expect(frame.width == 768 && frame.height == 576)
    }
}
