import Foundation
import Testing
import SightlineCore
import SightlineMedia
import SightlineTestSupport

/// Bad input never crashes or hangs: it is either a clear error naming the input, or a decode
/// that skips and counts what is damaged.
@Suite struct BadInputTests {
    private func openError(_ url: String, _ options: SourceOptions = SourceOptions(output: nil)) -> SightlineError? {
        do {
            _ = try decodeAll(url, options)
            return nil
        } catch let error as SightlineError {
            return error
        } catch {
            return nil
        }
    }

    @Test func missingFile() {
        let error = openError("/no/such/dir/clip.mp4")
        #expect(error == .inputNotFound(input: "/no/such/dir/clip.mp4"))
        #expect(error?.description.contains("/no/such/dir/clip.mp4") == true)
    }

    @Test func notMediaAtAll() throws {
        let path = try Fixtures.shared.garbageFile()
        guard case .cannotOpen(let input, _)? = openError(path) else {
            Issue.record("expected cannotOpen for random bytes")
            return
        }
        #expect(input == path)
    }

    @Test func audioOnlyHasNoVideo() throws {
        let path = try Fixtures.shared.audioOnly()
        #expect(openError(path) == .noVideoStream(input: path))
    }

    @Test func unknownCodecIsUnsupported() throws {
        let path = try Fixtures.shared.unknownCodec()
        #expect(openError(path) == .unsupportedCodec(input: path, codec: "unknown"))
    }

    @Test(arguments: ["hls", "concat"])
    func aLocalFileMayOnlyReadItself(kind: String) throws {
        // A short text file named .mp4 that is really a playlist (or an ffconcat list) naming
        // another local file: FFmpeg would decode that file instead. Found by the service
        // hardening review (a 90-byte playlist made `decode` read another file).
        let target = try Fixtures.shared.clip(Fixtures.offsetTS)
        let folder = (target as NSString).deletingLastPathComponent
        let disguised = folder + "/disguised-\(kind)-\(getpid()).mp4"
        let text = kind == "hls"
            ? "#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:3,\n\(target)\n#EXT-X-ENDLIST\n"
            : "ffconcat version 1.0\nfile '\((target as NSString).lastPathComponent)'\n"
        try text.write(toFile: disguised, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: disguised) }
        guard case .cannotOpen(let input, let reason)? = openError(disguised) else {
            Issue.record("decoded through a \(kind) file: \(String(describing: openError(disguised)))")
            return
        }
        #expect(input == disguised)
        #expect(reason.contains("refers to other files"), "\(reason)")
        // The clip itself still opens.
        #expect(openError(target) == nil)
    }

    @Test func refusedConnectionEndsAfterAttempts() {
        let started = Date()
        let options = SourceOptions(output: nil, live: LiveOptions(
            readTimeout: 1, openTimeout: 1, reconnect: .init(maxAttempts: 2, initialDelay: 0.05, maxDelay: 0.1)))
        let error = openError("tcp://127.0.0.1:1", options)
        guard case .connectionFailed(let input, let reason, let attempts)? = error else {
            Issue.record("expected connectionFailed, got \(String(describing: error))")
            return
        }
        #expect(input == "tcp://127.0.0.1:1")
        #expect(reason.lowercased().contains("refused"))
        #expect(attempts == 3)
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test func silentLiveSourceTimesOut() {
        // Nobody sends to this UDP port: opening must give up by its deadline, not hang.
        let started = Date()
        let port = Int.random(in: 40000..<50000)
        let options = SourceOptions(output: nil, live: LiveOptions(
            readTimeout: 0.5, openTimeout: 0.5, reconnect: .init(maxAttempts: 1, initialDelay: 0.05), analyzeDuration: 0.2))
        let error = openError("udp://127.0.0.1:\(port)", options)
        guard case .connectionFailed? = error else {
            Issue.record("expected connectionFailed, got \(String(describing: error))")
            return
        }
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test(arguments: [0.1, 0.35, 0.6, 0.85, 0.99])
    func truncatedFaststartMP4YieldsWhatItHas(fraction: Double) throws {
        let clip = Fixtures.small
        let path = try Fixtures.shared.truncated(try Fixtures.shared.clip(clip), fraction: fraction)
        let run = try decodeAll(path)
        #expect(run.frames.count < clip.frameCount)
        #expect(run.frames.count > 0 || fraction < 0.2)
        for (a, b) in zip(run.frames, run.frames.dropFirst()) { #expect(a.seconds < b.seconds) }
    }

    @Test(arguments: [0.2, 0.5, 0.9])
    func truncatedTransportStreamYieldsWhatItHas(fraction: Double) throws {
        let clip = Fixtures.offsetTS
        let path = try Fixtures.shared.truncated(try Fixtures.shared.clip(clip), fraction: fraction)
        let run = try decodeAll(path)
        #expect(run.frames.count < clip.frameCount)
        #expect(run.frames.count >= Int(Double(clip.frameCount) * fraction * 0.5))
    }

    @Test(arguments: [0.3, 0.6, 0.95])
    func mp4WithoutItsIndexIsAClearError(fraction: Double) throws {
        // The moov atom is at the end: cut it off and the file cannot be opened at all.
        let path = try Fixtures.shared.truncated(try Fixtures.shared.moovAtEnd(), fraction: fraction)
        guard case .cannotOpen(let input, let reason)? = openError(path) else {
            Issue.record("expected cannotOpen")
            return
        }
        #expect(input == path)
        #expect(reason.contains("truncated"))
    }

    @Test(arguments: [(0.3, 4096), (0.5, 20_000), (0.7, 800)])
    func garbageInsideTransportStreamIsSkippedAndCounted(fraction: Double, count: Int) throws {
        let clip = Fixtures.offsetTS
        let path = try Fixtures.shared.corrupted(try Fixtures.shared.clip(clip), at: fraction, count: count)
        let run = try decodeAll(path, SourceOptions(output: OutputFormat(width: 64, height: 48)))
        let damage = run.stats.corruptPackets + run.stats.corruptFrames + (clip.frameCount - run.stats.framesDecoded)
        #expect(damage > 0, "garbage must show up in the counters or the frame count")
        #expect(run.frames.count > clip.frameCount / 2, "frames after the damage are still decoded")
        // Frames on both sides of the damage come through.
        #expect(run.frames.last.map { $0.decodeIndex > Int(Double(clip.frameCount) * fraction) } == true)
    }

    @Test(arguments: [(0.4, 2048), (0.6, 16_000)])
    func garbageInsideMP4IsSkipped(fraction: Double, count: Int) throws {
        let clip = Fixtures.small
        let path = try Fixtures.shared.corrupted(try Fixtures.shared.clip(clip), at: fraction, count: count)
        let run = try decodeAll(path, SourceOptions(output: OutputFormat(width: 64, height: 48)))
        #expect(run.frames.count > clip.frameCount / 2)
        #expect(run.stats.corruptPackets + run.stats.corruptFrames > 0 || run.frames.count < clip.frameCount)
    }

    @Test func cancelStopsPromptlyWithEndOfStream() throws {
        let source = VideoSource(url: try Fixtures.shared.clip(Fixtures.hd), options: SourceOptions(output: nil))
        var frames = 0
        var ended = false
        while let event = try source.next() {
            if case .frame = event {
                frames += 1
                if frames == 3 { source.cancel() }
            }
            if case .endOfStream = event { ended = true }
        }
        #expect(ended)
        #expect(frames < 50)
    }
}
