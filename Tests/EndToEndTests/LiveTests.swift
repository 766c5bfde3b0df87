import Foundation
import Testing
import SightlineTestSupport

/// ffmpeg pushes MPEG-TS in real time on loopback; the CLI reads it live, loses it when the
/// sender is killed, reconnects when it is restarted, and reports the gap.
@Suite(.serialized) struct LiveTests {
    let bin = sightlineBinary()
    let readerOptions = [
        "--events", "--size", "160x120", "--read-timeout", "1", "--open-timeout", "2",
        "--reconnect-delay", "0.2", "--reconnect-max-delay", "0.5", "--reconnect-attempts", "60",
    ]

    private func frames(_ events: [[String: Any]]) -> [[String: Any]] {
        events.filter { $0["event"] as? String == "frame" }
    }

    private func runLossAndReturn(readerURL: String, senderURL: String, senderFirst: Bool) throws {
        var sender: Process? = nil
        if senderFirst { sender = try startLiveSender(url: senderURL) }
        let reader = try LineStreamingProcess(bin, ["decode", readerURL] + readerOptions)
        defer { reader.kill() }
        if !senderFirst { sender = try startLiveSender(url: senderURL) }
        defer { if let sender { stopProcess(sender) } }

        // Real time: 25 fps in, about 25 fps out, with the reader keeping up.
        #expect(reader.waitFor(timeout: 20) { frames($0).count >= 25 }, "no live frames: \(reader.errorOutput)")
        let countBefore = frames(reader.events).count
        let windowStart = Date()
        Thread.sleep(forTimeInterval: 2)
        let rate = Double(frames(reader.events).count - countBefore) / Date().timeIntervalSince(windowStart)
        #expect(rate > 15 && rate < 40, "live rate \(rate) frames/s")
        let recent = frames(reader.events).suffix(10)
        for frame in recent {
            let lag = Date().timeIntervalSince1970 - (frame["wallclock"] as? Double ?? 0)
            #expect(lag < 3, "frames are current, not buffered")
        }

        // The source dies for ~3 s, then a new sender (new clock, starting again at 1.4 s) returns.
        if let sender { stopProcess(sender) }
        let killedAt = Date()
        Thread.sleep(forTimeInterval: 3)
        sender = try startLiveSender(url: senderURL)
        let sawGap = reader.waitFor(timeout: 25) { events in
            guard let gapIndex = events.firstIndex(where: { $0["event"] as? String == "gap" }) else { return false }
            return frames(Array(events[gapIndex...])).count >= 10
        }
        #expect(sawGap, "no gap/recovery: \(reader.errorOutput)")

        let events = reader.events
        let gap = try #require(events.first { $0["event"] as? String == "gap" })
        let duration = try #require(gap["duration"] as? Double)
        let outage = Date().timeIntervalSince(killedAt)
        #expect(duration >= 2.5 && duration <= outage, "gap \(duration) s for a ~3 s outage of \(outage) s")
        #expect(events.contains { $0["event"] as? String == "reconnecting" })
        #expect(reader.errorOutput.contains("source lost"))
        #expect(reader.errorOutput.contains("back after"))

        // Time only moves forward, and jumps by about the gap across it.
        let seconds = frames(events).compactMap { $0["seconds"] as? Double }
        for (a, b) in zip(seconds, seconds.dropFirst()) { #expect(b >= a) }
        let after = try #require(gap["after_seconds"] as? Double)
        let gapIndex = try #require(events.firstIndex { $0["event"] as? String == "gap" })
        let firstAfter = try #require(frames(Array(events[gapIndex...])).first?["seconds"] as? Double)
        #expect(abs((firstAfter - after) - duration) < 0.5)

        reader.signal(SIGTERM)
        #expect(reader.waitForExit(timeout: 10) == 0)
        #expect(reader.events.last?["event"] as? String == "end_of_stream")
    }

    @Test func udpReaderSurvivesSenderRestart() throws {
        let port = freePort(udp: true)
        try runLossAndReturn(readerURL: "udp://127.0.0.1:\(port)", senderURL: "udp://127.0.0.1:\(port)?pkt_size=1316", senderFirst: false)
    }

    @Test func tcpReaderReconnectsToRestartedServer() throws {
        let port = freePort()
        try runLossAndReturn(readerURL: "tcp://127.0.0.1:\(port)", senderURL: "tcp://127.0.0.1:\(port)?listen=1", senderFirst: true)
    }

    @Test func aRestartedTCPCameraIsReadWithinSecondsWithDefaultDelays() throws {
        // With the default delays, a camera down for 10 s had pushed the backoff to 8 s, so its
        // return went unread for up to 8 s. Refused attempts now retry every 0.5 s.
        let port = freePort()
        let url = "tcp://127.0.0.1:\(port)"
        var sender = try startLiveSender(url: url + "?listen=1", size: "160x120")
        let reader = try LineStreamingProcess(bin, ["decode", url, "--events", "--size", "160x120"])
        defer { reader.kill() }
        defer { stopProcess(sender) }
        #expect(reader.waitFor(timeout: 20) { frames($0).count >= 10 }, "no live frames: \(reader.errorOutput)")
        stopProcess(sender)
        Thread.sleep(forTimeInterval: 10)
        let restarted = Date()
        sender = try startLiveSender(url: url + "?listen=1", size: "160x120")
        let back = reader.waitFor(timeout: 20) { events in
            guard let gap = events.firstIndex(where: { $0["event"] as? String == "gap" }) else { return false }
            return !frames(Array(events[gap...])).isEmpty
        }
        let seconds = Date().timeIntervalSince(restarted)
        #expect(back && seconds < 4, "first frame \(seconds) s after the camera returned")
        let delays = reader.events.filter { $0["event"] as? String == "reconnecting" }.compactMap { $0["delay"] as? Double }
        #expect(delays.count > 10 && delays.dropFirst().allSatisfy { $0 <= 0.5 }, "refused attempts do not back off: \(delays)")
    }

    @Test func sourceThatNeverReturnsEndsWithAClearError() throws {
        let port = freePort()
        let url = "tcp://127.0.0.1:\(port)"
        let sender = try startLiveSender(url: url + "?listen=1")
        let reader = try LineStreamingProcess(bin, ["decode", url, "--events", "--no-convert", "--read-timeout", "1",
                                                    "--reconnect-attempts", "3", "--reconnect-delay", "0.1"])
        defer { reader.kill() }
        #expect(reader.waitFor(timeout: 20) { frames($0).count >= 5 })
        stopProcess(sender)
        let status = reader.waitForExit(timeout: 20)
        #expect(status == 1)
        let last = reader.errorOutput.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.contains("source unreachable after 4 attempts"), "\(reader.errorOutput)")
        #expect(last.contains(url))
    }
}
