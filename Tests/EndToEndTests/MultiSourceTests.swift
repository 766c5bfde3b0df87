import Foundation
import Testing
import SightlineTestSupport

/// Four live cameras (ffmpeg pushing MPEG-TS over UDP) and one dead one in a single pipeline:
/// every live source's messages arrive in order, and the dead source fails alone.
@Suite(.serialized) struct MultiSourceTests {
    let bin = sightlineBinary()

    @Test func fourLiveCamerasAndOneThatNeverConnects() throws {
        let ports = (0..<4).map { _ in freePort(udp: true) }
        let busPort = freePort()
        let deadPort = freePort()
        var yaml = "pipeline: cameras\ndefaults: {policy: drop-oldest, capacity: 4}\nnodes:\n"
        for (i, port) in ports.enumerated() {
            yaml += "  cam\(i + 1): {type: source, url: \"udp://127.0.0.1:\(port)\", size: 64x48, read_timeout: 2}\n"
        }
        yaml += "  dead: {type: source, url: \"tcp://127.0.0.1:\(deadPort)\", reconnect_attempts: 1, reconnect_delay: 0.1, open_timeout: 1}\n"
        yaml += "  stats: {type: frame_stats}\n"
        yaml += "  out: {type: publish, endpoint: \"pub+bind:tcp://127.0.0.1:\(busPort)\", wait_subscribers: 1}\n"
        yaml += "edges:\n  - dead -> stats\n" + (1...4).map { "  - cam\($0) -> stats\n" }.joined() + "  - stats -> out\n"
        let path = Fixtures.shared.directory + "/cameras-\(getpid()).yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)

        let subscriber = try LineStreamingProcess(bin, ["subscribe", "tcp://127.0.0.1:\(busPort)", "--idle-timeout", "30"])
        defer { subscriber.kill() }
        let runner = try LineStreamingProcess(bin, ["run", path])
        defer { runner.kill() }
        var senders: [Process] = []
        defer { senders.forEach { stopProcess($0) } }
        for port in ports { senders.append(try startLiveSender(url: "udp://127.0.0.1:\(port)?pkt_size=1316", seconds: 60)) }

        func statsCount(_ source: String) -> Int {
            subscriber.output.filter { $0.hasPrefix("{\"topic\":\"stats/\(source)/\"") }.count
        }
        let allFlowing = subscriber.waitFor(timeout: 30) { _ in (1...4).allSatisfy { statsCount("cam\($0)") >= 25 } }
        #expect(allFlowing, "\(runner.errorOutput)")
        runner.signal(SIGINT)
        #expect(runner.waitForExit(timeout: 20) == 3, "a failed source makes the exit status 3")
        #expect(runner.errorOutput.contains("source 'dead' failed"))

        // The subscriber is a separate process: give its last lines time to arrive.
        let ended = subscriber.waitFor(timeout: 15) { events in
            let finished = Set(events.compactMap { $0["header"] as? [String: Any] }
                .filter { ($0["data"] as? [String: Any])?["event"] as? String == "end_of_stream" }
                .compactMap { $0["source"] as? String })
            return finished.isSuperset(of: ["cam1", "cam2", "cam3", "cam4", "dead"])
        }
        #expect(ended, "every source's end_of_stream reached the subscriber")
        let events = subscriber.events
        for i in 1...4 {
            let topic = "stats/cam\(i)/"
            let headers = events.filter { $0["topic"] as? String == topic }.compactMap { $0["header"] as? [String: Any] }
            let seqs = headers.compactMap { $0["seq"] as? Int }
            #expect(seqs == Array(0..<seqs.count), "\(topic) in order without gaps")
            let pts = headers.compactMap { $0["pts_start"] as? Double }
            #expect(pts == pts.sorted(), "\(topic) time moves forward")
            let end = events.last { ($0["header"] as? [String: Any])?["source"] as? String == "cam\(i)" }
            #expect(((end?["header"] as? [String: Any])?["data"] as? [String: Any])?["event"] as? String == "end_of_stream")
        }
        let deadStatus = events.compactMap { $0["header"] as? [String: Any] }.filter { $0["source"] as? String == "dead" }
        let deadEvents = deadStatus.compactMap { ($0["data"] as? [String: Any])?["event"] as? String }
        #expect(deadEvents.contains("error"))
        #expect(deadEvents.last == "end_of_stream")
    }
}
