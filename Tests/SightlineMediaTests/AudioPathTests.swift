import Foundation
import SightlineMedia
import SightlineTestSupport
import Testing

/// The audio path: the pause splitter as a timeline, the WAV bytes, and the reader on real
/// files made by ffmpeg (a stereo 44.1 kHz AAC track; a video with no audio).
@Suite struct SpeechChunkerTests {
    let rate = 16_000

    func tone(_ seconds: Double, level: Float = 0.3) -> [Float] {
        (0..<Int(seconds * Double(rate))).map { level * sin(Float($0) * 2 * .pi * 440 / Float(rate)) }
    }
    func silence(_ seconds: Double) -> [Float] { [Float](repeating: 0, count: Int(seconds * Double(rate))) }

    /// Feeds the samples in uneven blocks (as a decoder gives them) and finishes.
    func chunks(_ samples: [Float], settings: SpeechChunker.Settings = .init()) -> (chunks: [SpeechChunker.Chunk], skipped: Double) {
        var chunker = SpeechChunker(settings: settings)
        var out: [SpeechChunker.Chunk] = []
        var at = 0, block = 1000
        while at < samples.count {
            let end = min(samples.count, at + block)
            out += chunker.push(Array(samples[at..<end]))
            at = end
            block = block == 1000 ? 1777 : 1000
        }
        out += chunker.finish()
        return (out, chunker.silentSecondsSkipped)
    }

    @Test func aPauseBetweenTwoUtterancesSplitsThemInsideThePause() {
        let (out, _) = chunks(tone(2) + silence(1) + tone(3))
        #expect(out.count == 2)
        guard out.count == 2 else { return }
        #expect(out[0].start < 0.01)
        #expect(out[0].end > 2.0 && out[0].end < 3.0)      // the cut falls inside the pause
        #expect(out[1].start >= out[0].end - 1e-9)         // in order, no overlap
        #expect(out[1].start < 3.0 && out[1].end > 5.9)    // the second utterance whole
    }

    @Test func silenceAloneSendsNothingAndIsCounted() {
        let (out, skipped) = chunks(silence(12))
        #expect(out.isEmpty)
        #expect(abs(skipped - 12) < 0.05)
    }

    @Test func leadingSilenceIsLeftOutButTheSpeechStartIsKept() {
        let (out, skipped) = chunks(silence(5) + tone(2))
        #expect(out.count == 1)
        #expect((out.first?.start ?? 0) > 4.0 && (out.first?.start ?? 9) <= 5.0)
        #expect(skipped > 4.0)
    }

    @Test func speechWithoutPausesIsCutAtTheLimitAndNothingIsLost() {
        let samples = tone(70)
        let (out, _) = chunks(samples)
        #expect(out.count >= 3)
        #expect(out.allSatisfy { $0.end - $0.start <= 30 + 1e-6 })
        // Contiguous and complete: every sample in exactly one chunk.
        #expect(out.reduce(0) { $0 + $1.samples.count } == samples.count)
        for (a, b) in zip(out, out.dropFirst()) { #expect(abs(a.end - b.start) < 1e-9) }
    }

    @Test func aShortPauseDoesNotSplit() {
        let (out, _) = chunks(tone(2) + silence(0.2) + tone(2))
        #expect(out.count == 1)
    }
}

@Suite struct WAVFileTests {
    @Test func theHeaderDescribesSixteenBitMonoAndSamplesAreClipped() {
        let bytes = WAVFile.bytes([0, 0.5, -1, 2, .nan], sampleRate: 16_000)
        #expect(bytes.count == 44 + 10)
        #expect(String(decoding: bytes.prefix(4), as: UTF8.self) == "RIFF")
        func u32(_ at: Int) -> UInt32 { bytes[at..<(at + 4)].enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * $1.offset) } }
        func i16(_ at: Int) -> Int16 { Int16(bitPattern: UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8) }
        #expect(u32(4) == 36 + 10 && u32(24) == 16_000 && u32(40) == 10)
        #expect(i16(22) == 1 && i16(34) == 16)              // channels, bits
        #expect([i16(44), i16(46), i16(48), i16(50), i16(52)] == [0, 16384, -32767, 32767, 0])
    }
}

@Suite struct AudioReaderTests {
    @Test func aStereoAACTrackComesOutAsSixteenKilohertzMono() throws {
        let folder = NSTemporaryDirectory() + "sightline-audio-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let clip = folder + "/speechlike.mp4"
        // 2 s of tone, 1 s of silence, 3 s of tone; stereo at 44.1 kHz, with a video track.
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=6",
                                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=6,volume='if(between(t,2,3),0,1)':eval=frame,aformat=channel_layouts=stereo",
                                "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", clip])
        let reader = try #require(try AudioReader(url: clip))
        let samples = try reader.readAll()
        #expect(abs(Double(samples.count) / 16_000 - 6) < 0.1)
        let loud = samples[8_000..<24_000].map { $0 * $0 }.reduce(0, +) / 16_000
        let quiet = samples[36_000..<44_000].map { $0 * $0 }.reduce(0, +) / 8_000
        #expect(loud > 0.003 && quiet < 1e-4)   // lavfi sine: amplitude 1/8, power 0.0078
        var chunker = SpeechChunker()
        let chunks = chunker.push(samples) + chunker.finish()
        #expect(chunks.count == 2)
    }

    @Test func aVideoWithoutAudioHasNoReader() throws {
        let clip = try SampleVideos.path("vtest.avi")
        #expect(try AudioReader(url: clip) == nil)
    }

    @Test func aMissingFileIsAnError() {
        #expect(throws: (any Error).self) { _ = try AudioReader(url: "/nonexistent/clip.mp4") }
    }
}
