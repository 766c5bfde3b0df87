import Foundation
import SightlineTestSupport
import Testing

/// `transcribe` in a whole pipeline against a local server that speaks the protocol: a clip
/// with two utterances gives two transcripts on the source's clock, with provenance and the
/// policy's terms masked and flagged; a clip with no audio track is said once on the status
/// topic and the run is otherwise as before.
@Suite(.serialized) struct TranscribeTests {
    let bin = sightlineBinary()

    func folder(_ name: String) throws -> String {
        let folder = NSTemporaryDirectory() + "sightline-asr-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    func pipeline(_ folder: String, clip: String, endpoint: String) throws -> String {
        let policy = folder + "/policy.yaml"
        try """
        version: 1
        categories:
          profanity: {rule: text, terms: [damn], enter: 1, exit: 1, min_duration: 0}
        """.write(toFile: policy, atomically: true, encoding: .utf8)
        let path = folder + "/asr.yaml"
        try """
        pipeline: asr-test
        defaults: {policy: block, capacity: 8}
        nodes:
          cam: {type: source, url: "\(clip)", fps: 2}
          asr: {type: transcribe, endpoint: "\(endpoint)", model: test-whisper, timeout: 5, retries: 1, policy: "\(policy)"}
          moderation: {type: moderation, policy: "\(policy)"}
          out: {type: jsonl, path: out.jsonl}
        edges:
          - cam -> asr
          - asr -> moderation
          - moderation -> out
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Labels and captions per 2 s window after the transcribe node: captions wait for speech.
    func captionsPipeline(_ folder: String, clip: String, endpoint: String) throws -> String {
        let path = folder + "/asr-captions.yaml"
        try """
        pipeline: asr-captions-test
        defaults: {policy: block, capacity: 8}
        nodes:
          cam: {type: source, url: "\(clip)", fps: 2}
          asr: {type: transcribe, endpoint: "\(endpoint)", model: test-whisper, timeout: 10, retries: 0}
          labels: {type: labels, top: 3}
          captions: {type: captions, window: 2, speech_wait: 20}
          out: {type: jsonl, path: out.jsonl}
        edges:
          - cam -> asr
          - asr -> labels
          - labels -> captions
          - captions -> out
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func messages(_ path: String) throws -> [(topic: String, header: [String: Any])] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").compactMap { line in
            guard let message = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let topic = message["topic"] as? String, let header = message["header"] as? [String: Any] else { return nil }
            return (topic, header)
        }
    }

    @Test func twoUtterancesGiveTwoTranscriptsOnTheSourcesClock() throws {
        let folder = try folder("speech")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let clip = folder + "/talk.mp4"
        // Tone 0–2 s, a pause 2–3.5 s, tone 3.5–6 s: two "utterances".
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=6",
                                "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=48000:duration=6,volume='if(between(t,2,3.5),0,1)':eval=frame",
                                "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", clip])
        let server = try FakeModelServer { request, n in
            guard request.form?["file"] != nil else { return .status(400, body: #"{"error": "no file"}"#) }
            return .status(200, body: #"{"text": "part \#(n) damn", "language": "en", "segments": [{"start": 0.25, "end": 1.0, "text": "part \#(n) damn"}]}"#)
        }
        defer { server.stop() }
        let run = try Tool.run(bin, ["run", try pipeline(folder, clip: clip, endpoint: server.url), "--output", folder], check: false)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(server.requests.count == 2)
        // Each request carries 16 kHz mono 16-bit WAV.
        for request in server.requests {
            let wav = try #require(request.form?["file"]?.data)
            #expect(wav.count > 44 && wav[22] == 1 && wav[24..<28].elementsEqual([0x80, 0x3E, 0, 0]))
        }
        let transcripts = try messages(folder + "/out.jsonl").filter { $0.topic.hasPrefix("transcripts/") }
        #expect(transcripts.count == 2)
        func span(_ header: [String: Any]) -> [Double]? {
            guard let start = header["pts_start"] as? Double, let end = header["pts_end"] as? Double else { return nil }
            return [start, end]
        }
        let spans = transcripts.compactMap { span($0.header) }.sorted { $0[0] < $1[0] }
        #expect(spans.count == 2)
        if spans.count == 2 {
            #expect(spans[0][0] < 0.1 && spans[0][1] > 2.0 && spans[0][1] < 3.5)
            #expect(spans[1][0] > 2.0 && spans[1][0] < 3.5 && spans[1][1] > 5.8)
        }
        for message in transcripts {
            let data = try #require(message.header["data"] as? [String: Any])
            #expect((data["text"] as? String)?.contains("d***") == true && data["flagged"] as? Bool == true)
            let segment = try #require((data["segments"] as? [[String: Any]])?.first)
            let chunk = try #require(span(message.header))
            #expect(abs(((segment["start"] as? Double) ?? -1) - (chunk[0] + 0.25)) < 0.01)
            let provenance = try #require(message.header["provenance"] as? [[String: Any]])
            #expect(provenance.first?["name"] as? String == "test-whisper" && provenance.first?["version"] as? String == "asr@127.0.0.1")
        }
        // The spoken term raised the policy's flag, noted as spoken.
        let flags = try messages(folder + "/out.jsonl").filter { $0.topic.hasPrefix("moderation/") }.compactMap { $0.header["data"] as? [String: Any] }
        #expect(flags.first?["event"] as? String == "flag_start" && flags.first?["category"] as? String == "profanity")
        #expect((flags.first?["notes"] as? [String]) == ["spoken"])
    }

    /// A slow server (1.5 s per chunk) answers long after the frames of each window passed:
    /// each window's caption still quotes what was said in it, with the server as provenance.
    /// A second run over the same clip asks the server nothing: the answers come from the cache.
    @Test func captionsQuoteTheSpeechOfTheirWindowAndARerunHitsTheCache() throws {
        let folder = try folder("captions")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let clip = folder + "/talk.mp4"
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=6",
                                "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=48000:duration=6,volume='if(between(t,2,3.5),0,1)':eval=frame",
                                "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", clip])
        let server = try FakeModelServer { _, n in
            .status(200, body: #"{"text": "words \#(n)", "segments": [{"start": 0.25, "end": 1.0, "text": "words \#(n)"}]}"#, delay: 1.5)
        }
        defer { server.stop() }
        let path = try captionsPipeline(folder, clip: clip, endpoint: server.url)
        let run = try Tool.run(bin, ["run", path, "--output", folder], check: false)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(server.requests.count == 2)
        let captions = try messages(folder + "/out.jsonl").filter { $0.topic.hasPrefix("captions/") }
        func said(_ header: [String: Any]) -> [String] {
            let data = header["data"] as? [String: Any]
            return (data?["phrases"] as? [[String: Any]] ?? []).filter { $0["kind"] as? String == "speech" }.compactMap { $0["text"] as? String }
        }
        // Speech 0.25–1.0 s falls in [0, 2), the second chunk's (from about 2.75 s) in [2, 4).
        let first = captions.first { ($0.header["pts_start"] as? Double ?? -1) < 0.1 }
        let second = captions.first { abs(($0.header["pts_start"] as? Double ?? -1) - 2) < 0.1 }
        #expect(first.map { said($0.header) } == ["someone says “words 0”"])
        #expect(second.map { said($0.header) } == ["someone says “words 1”"])
        #expect(((first?.header["data"] as? [String: Any])?["caption"] as? String)?.contains("someone says “words 0”") == true)
        let provenance = first?.header["provenance"] as? [[String: Any]] ?? []
        #expect(provenance.contains { $0["name"] as? String == "test-whisper" })

        try FileManager.default.removeItem(atPath: folder + "/out.jsonl")
        let rerun = try Tool.run(bin, ["run", path, "--output", folder], check: false)
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(server.requests.count == 2, "the rerun asked the server again")
        let again = try messages(folder + "/out.jsonl")
        let transcripts = again.filter { $0.topic.hasPrefix("transcripts/") }
        #expect(transcripts.count == 2)
        #expect(transcripts.allSatisfy { ($0.header["provenance"] as? [[String: Any]] ?? []).contains { $0["name"] as? String == "asr-cache" } })
        #expect(again.filter { $0.topic.hasPrefix("captions/") }.compactMap { said($0.header).first }.sorted() == ["someone says “words 0”", "someone says “words 1”"])
    }

    /// A live MPEG-TS stream on UDP (which cannot be received twice) whose picture turns bright
    /// exactly while a tone sounds, 1.5 s of every 3: the audio comes from the source's own
    /// demuxer, and each transcript spans its tone on the frames' clock.
    @Test func aLiveStreamsAudioIsTranscribedOnTheFramesClock() throws {
        let folder = try folder("live")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let server = try FakeModelServer { _, n in
            .status(200, body: #"{"text": "live \#(n)", "segments": [{"start": 0.1, "end": 0.6, "text": "live \#(n)"}]}"#)
        }
        defer { server.stop() }
        let port = freePort(udp: true)
        let path = folder + "/live-asr.yaml"
        try """
        pipeline: live-asr-test
        defaults: {policy: block, capacity: 64}
        nodes:
          cam: {type: source, url: "udp://127.0.0.1:\(port)", size: 32x24, open_timeout: 20, read_timeout: 2}
          stats: {type: frame_stats}
          asr: {type: transcribe, endpoint: "\(server.url)", model: test-whisper, timeout: 5}
          out: {type: jsonl, path: out.jsonl}
        edges:
          - cam -> stats
          - stats -> asr
          - asr -> out
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let run = try LineStreamingProcess(bin, ["run", path, "--output", folder])
        defer { run.kill() }
        Thread.sleep(forTimeInterval: 1)
        let sender = try Tool.start("ffmpeg", [
            "-hide_banner", "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", "color=c=black:s=64x48:r=10,geq=lum='if(lt(mod(T,3),1.5),235,16)':cb=128:cr=128",
            "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=48000,volume='if(lt(mod(t,3),1.5),1,0)':eval=frame",
            "-t", "10", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "10", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-f", "mpegts", "udp://127.0.0.1:\(port)?pkt_size=1316",
        ])
        sender.waitUntilExit()
        Thread.sleep(forTimeInterval: 1.5)
        run.signal(SIGINT)
        #expect(run.waitForExit(timeout: 30) == 0, "\(run.errorOutput)")
        let all = try messages(folder + "/out.jsonl")
        // Tone onsets on the frames' clock: where the picture turns bright.
        let lumas = all.filter { $0.topic.hasPrefix("stats/") }.compactMap { message -> (Double, Double)? in
            guard let t = message.header["pts_start"] as? Double, let luma = (message.header["data"] as? [String: Any])?["mean_luma"] as? Double else { return nil }
            return (t, luma)
        }.sorted { $0.0 < $1.0 }
        // (The stream may stop inside the last tone: only whole tones count.)
        let lastFrame = lumas.last?.0 ?? 0
        let onsets = zip(lumas, lumas.dropFirst()).filter { $0.0.1 < 128 && $0.1.1 >= 128 }.map(\.1.0).filter { $0 + 2 <= lastFrame }
        #expect(onsets.count >= 2, "\(lumas.count) frames: \(lumas.prefix(40))")
        let transcripts = all.filter { $0.topic.hasPrefix("transcripts/") }.compactMap { message -> (Double, Double)? in
            guard let start = message.header["pts_start"] as? Double, let end = message.header["pts_end"] as? Double else { return nil }
            return (start, end)
        }
        #expect(transcripts.count >= 2 && server.requests.count == transcripts.count)
        // A chunk keeps 0.4 s of the pause before its tone and ends in the middle of the pause
        // after it (tone + 0.2 s); 0.2 s of slack for the AAC encoder's delay and frame steps.
        for onset in onsets {
            guard let chunk = transcripts.first(where: { $0.0 <= onset + 0.3 && $0.1 >= onset + 1 }) else {
                Issue.record("no transcript spans the tone starting at \(onset) s: \(transcripts)")
                continue
            }
            #expect(chunk.0 >= onset - 0.65 && chunk.0 <= onset + 0.2, "chunk \(chunk) for the tone at \(onset)")
            #expect(chunk.1 >= onset + 1.45 && chunk.1 <= onset + 1.95, "chunk \(chunk) for the tone at \(onset)")
        }
        #expect(!run.errorOutput.contains("not reachable"))
    }

    @Test func aVideoWithoutAudioIsSaidOnceAndTheRunGoesOn() throws {
        let folder = try folder("silent")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let clip = folder + "/mute.mp4"
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=3",
                                "-c:v", "libx264", "-preset", "ultrafast", clip])
        let server = try FakeModelServer { _, _ in .status(200, body: #"{"text": "never"}"#) }
        defer { server.stop() }
        let run = try Tool.run(bin, ["run", try pipeline(folder, clip: clip, endpoint: server.url), "--output", folder], check: false)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(server.requests.isEmpty)
        let all = try messages(folder + "/out.jsonl")
        let said = all.filter { $0.topic.hasPrefix("status/") }
            .compactMap { ($0.header["data"] as? [String: Any])?["message"] as? String }.filter { $0.contains("no audio track") }
        #expect(said.count == 1)
        #expect(all.contains { $0.topic.hasPrefix("transcripts/") } == false)
    }
}
