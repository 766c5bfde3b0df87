import Foundation
import Testing
import SightlineTestSupport

/// Every network protocol a user names in the README, each against a real peer on loopback:
/// HTTP serving an HLS playlist (python's http.server), RTMP and SRT (ffmpeg as the listening
/// server), RTSP (ffmpeg pushing to Sightline listening).
@Suite(.serialized) struct ProtocolTests {
    let bin = sightlineBinary()

    private func frameCount(_ events: [[String: Any]]) -> Int {
        events.filter { $0["event"] as? String == "frame" }.count
    }

    private func expectFrames(url: String, extra: [String] = [], afterStart: () throws -> Void = {}) throws {
        let reader = try LineStreamingProcess(bin, ["decode", url, "--events", "--limit", "20", "--size", "64x48"] + extra)
        defer { reader.kill() }
        try afterStart()
        let status = reader.waitForExit(timeout: 30)
        #expect(status == 0, "\(url): \(reader.errorOutput)")
        #expect(frameCount(reader.events) == 20, "\(url): \(reader.errorOutput)")
        #expect(reader.events.last?["event"] as? String == "end_of_stream")
    }

    @Test func hlsOverHTTP() throws {
        let dir = Fixtures.shared.directory + "/hls"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Tool.run("ffmpeg", ["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
                                "-t", "3", "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-f", "hls", "-hls_time", "1",
                                "-hls_playlist_type", "vod", dir + "/index.m3u8"])
        let port = freePort()
        let server = try Tool.start("python3", ["-m", "http.server", "\(port)", "--bind", "127.0.0.1", "--directory", dir])
        defer { stopProcess(server) }
        try waitUntilAccepting(port: port, name: "python3 -m http.server", timeout: 20)
        try expectFrames(url: "http://127.0.0.1:\(port)/index.m3u8")
    }

    @Test func rtmpFromAListeningServer() throws {
        let port = freePort()
        let sender = try Tool.start("ffmpeg", ["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi",
                                               "-i", "testsrc2=size=320x240:rate=25", "-t", "20", "-c:v", "libx264",
                                               "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25",
                                               "-f", "flv", "-listen", "1", "rtmp://127.0.0.1:\(port)/live/cam"])
        defer { stopProcess(sender) }
        Thread.sleep(forTimeInterval: 0.5)
        try expectFrames(url: "rtmp://127.0.0.1:\(port)/live/cam")
    }

    @Test func srtCallerToAListener() throws {
        let port = freePort(udp: true)
        let sender = try startLiveSender(url: "srt://127.0.0.1:\(port)?mode=listener", seconds: 20)
        defer { stopProcess(sender) }
        Thread.sleep(forTimeInterval: 0.5)
        try expectFrames(url: "srt://127.0.0.1:\(port)")
    }

    @Test func rtspPushedToSightlineListening() throws {
        let port = freePort()
        var sender: Process?
        defer { if let sender { stopProcess(sender) } }
        try expectFrames(url: "rtsp://127.0.0.1:\(port)/live", extra: ["--option", "rtsp_flags=listen", "--open-timeout", "10"]) {
            Thread.sleep(forTimeInterval: 0.7)
            sender = try Tool.start("ffmpeg", ["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi",
                                               "-i", "testsrc2=size=320x240:rate=25", "-t", "20", "-c:v", "libx264",
                                               "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25",
                                               "-f", "rtsp", "rtsp://127.0.0.1:\(port)/live"])
        }
    }
}
