import Foundation
import Testing
import SightlineTestSupport

/// The real CLI, as users run it.
@Suite struct CLITests {
    let bin = sightlineBinary()

    @Test func probeJSONAgreesWithFFprobe() throws {
        let path = try Fixtures.shared.clip(Fixtures.hd)
        let ours = try Tool.run(bin, ["probe", path, "--json"]).stdout
        let report = try #require(try JSONSerialization.jsonObject(with: Data(ours.utf8)) as? [String: Any])
        let theirs = try Tool.run("ffprobe", ["-v", "error", "-show_streams", "-show_format", "-of", "json", path]).stdout
        let ffprobe = try #require(try JSONSerialization.jsonObject(with: Data(theirs.utf8)) as? [String: Any])
        let stream = try #require((report["streams"] as? [[String: Any]])?.first)
        let ffStream = try #require((ffprobe["streams"] as? [[String: Any]])?.first)
        let ffFormat = try #require(ffprobe["format"] as? [String: Any])

        #expect(report["container"] as? String == ffFormat["format_name"] as? String)
        #expect(stream["codec"] as? String == ffStream["codec_name"] as? String)
        #expect(stream["width"] as? Int == ffStream["width"] as? Int)
        #expect(stream["height"] as? Int == ffStream["height"] as? Int)
        #expect(stream["frameRate"] as? Double == 25)
        #expect(stream["frameCount"] as? Int == Int(ffStream["nb_frames"] as? String ?? ""))
        let duration = try #require(report["durationSeconds"] as? Double)
        #expect(abs(duration - (Double(ffFormat["duration"] as? String ?? "") ?? 0)) < 1e-3)
        #expect(report["bitRate"] as? Int == Int(ffFormat["bit_rate"] as? String ?? ""))
        #expect(stream["isDefaultVideo"] as? Bool == true)
    }

    @Test func probeTextNamesEveryStream() throws {
        let out = try Tool.run(bin, ["probe", try Fixtures.shared.clip(Fixtures.small)]).stdout
        #expect(out.contains("h264"))
        #expect(out.contains("320x240"))
        #expect(out.contains("30.000 fps"))
    }

    @Test func decodePrintsCountAndSpeed() throws {
        let result = try Tool.run(bin, ["decode", try Fixtures.shared.clip(Fixtures.small), "--threads", "2"])
        #expect(result.stderr.contains("decoded 90 frames, kept 90"))
        #expect(result.stderr.contains("frames/s"))
    }

    @Test func decodeEventsFollowTheSampler() throws {
        let result = try Tool.run(bin, ["decode", try Fixtures.shared.clip(Fixtures.small), "--fps", "2", "--size", "64x", "--events"])
        let events = result.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let frames = events.filter { $0["event"] as? String == "frame" }
        #expect(frames.compactMap { $0["index"] as? Int } == [0, 15, 30, 45, 60, 75])
        #expect(frames.allSatisfy { $0["width"] as? Int == 64 && $0["height"] as? Int == 48 })
        #expect(events.first?["event"] as? String == "opened")
        #expect(events.last?["event"] as? String == "end_of_stream")
        #expect(events.last?["frames_sampled_out"] as? Int == 84)
    }

    @Test func keyframeModeSummaryCountsSkippedPackets() throws {
        let result = try Tool.run(bin, ["decode", try Fixtures.shared.clip(Fixtures.small), "--mode", "keyframes"])
        #expect(result.stderr.contains("decoded 6 frames, kept 6"))
        #expect(result.stderr.contains("84 packets skipped (never decoded)"))
    }

    /// `--mode sampled` skips what `--fps` will not keep: without `--fps` there is nothing to
    /// plan by, and the command says so before opening anything.
    @Test func sampledModeWithoutFPSIsRefused() throws {
        let result = try Tool.run(bin, ["decode", try Fixtures.shared.clip(Fixtures.camera), "--mode", "sampled"], check: false)
        #expect(result.status != 0)
        #expect(result.stderr.contains("--mode sampled needs --fps"))
        let sampled = try Tool.run(bin, ["decode", try Fixtures.shared.clip(Fixtures.camera), "--mode", "sampled", "--fps", "2", "--threads", "1"])
        #expect(sampled.status == 0)
        #expect(sampled.stderr.contains("kept 10") && sampled.stderr.contains("42 packets skipped (never decoded)"))
    }

    @Test(arguments: ["missing", "garbage", "audio", "codec", "refused", "badfps", "hugefps"])
    func badInputIsOneClearLineAndNonZeroExit(kind: String) throws {
        let input: String
        var extra: [String] = []
        switch kind {
        case "missing": input = "/no/such/clip.mp4"
        case "garbage": input = try Fixtures.shared.garbageFile()
        case "audio": input = try Fixtures.shared.audioOnly()
        case "codec": input = try Fixtures.shared.unknownCodec()
        case "refused":
            input = "tcp://127.0.0.1:\(freePort())"
            extra = ["--reconnect-attempts", "1", "--reconnect-delay", "0.05"]
        case "hugefps":
            // Once a SIGILL in Rational(parsing:).
            input = try Fixtures.shared.clip(Fixtures.small)
            extra = ["--fps", "1000000000000000000.5"]
        default:
            input = try Fixtures.shared.clip(Fixtures.small)
            extra = ["--fps", "-3"]
        }
        let result = try Tool.run(bin, ["decode", input] + extra, check: false)
        #expect(result.status != 0)
        let lines = result.stderr.split(separator: "\n").filter { !$0.contains("reconnect attempt") }
        if kind == "badfps" || kind == "hugefps" {
            #expect(result.stderr.contains("--fps") && (result.status == 1 || result.status == 64), "\(result.status): \(result.stderr)")
        } else {
            #expect(lines.count == 1, "expected one line, got: \(result.stderr)")
            #expect(lines.first?.contains(input) == true)
            #expect(lines.first?.hasPrefix("sightline: ") == true)
        }
        #expect(!result.stderr.contains("Fatal error"))
    }

    @Test func versionNamesTheReleaseAndTheBusSchema() throws {
        let result = try Tool.run(bin, ["--version"])
        #expect(result.stdout.hasPrefix("sightline ") && result.stdout.contains("bus schema sightline.bus/1"), "\(result.stdout)")
    }

    /// `--help` is answered with the help text, at the root and for a subcommand (it once came
    /// back as "sightline: CommandError(…)").
    @Test func helpPrintsTheHelpText() throws {
        for arguments in [["--help"], ["run", "--help"], ["help", "detect"]] {
            let result = try Tool.run(bin, arguments)
            #expect(result.stdout.contains("USAGE: sightline"), "\(arguments): \(result.stdout) \(result.stderr)")
            #expect(!result.stderr.contains("CommandError"), "\(arguments): \(result.stderr)")
        }
    }

    /// A mistyped kernel switch would otherwise change nothing without a word.
    @Test func unknownKernelSwitchesAreWarnedAbout() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: bin)
        process.arguments = ["models", "passes"]
        process.environment = ["SIGHTLINE_ISA": "avx9", "SIGHTLINE_DISABLE_PASSES": "winograd,winogard", "PATH": "/usr/bin:/bin"]
        let err = Pipe(), out = Pipe()
        process.standardError = err
        process.standardOutput = out
        try process.run()
        process.waitUntilExit()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(stderr.contains("warning: SIGHTLINE_ISA='avx9' is not one of portable, avx2, avx512"), "\(stderr)")
        #expect(stderr.contains("names no pass 'winogard'"), "\(stderr)")
        #expect(stdout.contains("off  winograd"), "\(stdout)")
    }

    @Test func corruptFileDecodesAndReportsDamage() throws {
        let path = try Fixtures.shared.corrupted(try Fixtures.shared.clip(Fixtures.offsetTS), at: 0.5, count: 20_000)
        let result = try Tool.run(bin, ["decode", path])
        #expect(result.status == 0)
        #expect(result.stderr.contains("corrupt"))
    }

    @Test func sigintStopsADecodeCleanly() throws {
        // A live-paced UDP source never ends by itself; SIGINT must end it with end-of-stream.
        let port = freePort(udp: true)
        let reader = try LineStreamingProcess(bin, ["decode", "udp://127.0.0.1:\(port)", "--events", "--no-convert"])
        defer { reader.kill() }
        let sender = try startLiveSender(url: "udp://127.0.0.1:\(port)?pkt_size=1316")
        defer { stopProcess(sender) }
        #expect(reader.waitFor(timeout: 20) { $0.contains { $0["event"] as? String == "frame" } })
        reader.signal(SIGINT)
        let status = reader.waitForExit(timeout: 10)
        #expect(status == 0)
        #expect(reader.events.last?["event"] as? String == "end_of_stream")
        #expect(reader.errorOutput.contains("decoded"))
    }

    @Test func sigtermStopsADecodeBlockedOnAFIFO() throws {
        // open(2) on a FIFO with no writer blocks inside FFmpeg, out of the interrupt
        // callback's reach; the signal must still end the command within 2 s.
        let fifo = Fixtures.shared.directory + "/decode-blocked-\(getpid()).fifo"
        unlink(fifo)
        #expect(mkfifo(fifo, 0o600) == 0)
        defer { unlink(fifo) }
        let reader = try LineStreamingProcess(bin, ["decode", fifo, "--events"])
        defer { reader.kill() }
        Thread.sleep(forTimeInterval: 1)
        #expect(reader.isRunning)
        reader.signal(SIGTERM)
        let stoppedAt = Date()
        let status = reader.waitForExit(timeout: 10)
        #expect(Date().timeIntervalSince(stoppedAt) < 2.5)
        #expect(status == 130)
        #expect(reader.errorOutput.contains("blocked"))
    }
}
