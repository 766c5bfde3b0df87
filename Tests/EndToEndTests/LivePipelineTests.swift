import Foundation
import Testing
import SightlineTestSupport

/// Pipelines/live.yaml on a stream ffmpeg pushes over UDP in real time, read by the pyzmq
/// subscriber (Samples/subscriber.py): labels, NSFW scores and captions arrive with bounded
/// latency; the sender dies and comes back; the status topic tells the story.
@Suite(.serialized) struct LivePipelineTests {
    let bin = sightlineBinary()
    let root = repositoryRoot

    private func header(_ message: [String: Any]) -> [String: Any] { message["header"] as? [String: Any] ?? [:] }
    private func topic(_ message: [String: Any]) -> String { message["topic"] as? String ?? "" }
    private func event(_ message: [String: Any]) -> String? { (header(message)["data"] as? [String: Any])?["event"] as? String }
    private func latency(_ message: [String: Any]) -> Double? {
        guard let sent = header(message)["wallclock"] as? Double, let ingest = header(message)["ingest_wallclock"] as? Double else { return nil }
        return sent - ingest
    }

    @Test func captionsArriveLiveAndTheSourceDiesAndReturns() throws {
        let udp = "udp://127.0.0.1:\(freePort(udp: true))"
        let bus = "tcp://127.0.0.1:\(freePort())"
        let subscriber = try LineStreamingProcess("python3", [root + "/Samples/subscriber.py", bus])
        defer { subscriber.kill() }
        let pipeline = try LineStreamingProcess(bin, [
            "run", root + "/Pipelines/live.yaml", "--input", udp, "--set", "out.endpoint=pub+bind:\(bus)",
            "--set", "moderation.policy=\(root)/Pipelines/moderation-policy.yaml", "--set", "captions.policy=\(root)/Pipelines/moderation-policy.yaml",
            "--set", "cam.read_timeout=1", "--set", "cam.reconnect_delay=0.2", "--set", "cam.reconnect_max_delay=0.5", "--set", "shots.window=2",
        ])
        defer { pipeline.kill() }
        var sender = try startLiveSender(url: udp + "?pkt_size=1316", size: "320x240", seconds: 60)
        defer { stopProcess(sender) }

        // Results and captions arrive while the stream runs.
        let captionsArrived = subscriber.waitFor(timeout: 60) { events in events.filter { topic($0) == "captions/cam/" }.count >= 2 }
        #expect(captionsArrived, "no captions: \(pipeline.errorOutput)")
        let before = subscriber.events
        let labels = before.filter { topic($0) == "labels/cam/" }
        #expect(labels.count >= 4)
        let latencies = (labels + before.filter { topic($0) == "nsfw/cam/" || topic($0) == "captions/cam/" }).compactMap(latency).sorted()
        #expect(!latencies.isEmpty)
        let median = latencies.isEmpty ? .infinity : latencies[latencies.count / 2]
        // The strict targets (p50 ≤ 300 ms, p99 ≤ 1 s) are measured by `sightline bench live` on
        // an otherwise idle machine; here the other tests share the two cores, so this only
        // checks that drop-oldest queues keep the latency bounded instead of letting it grow.
        #expect(median < 3.0, "median frame-to-message latency \(median) s")

        // The sender dies for ~3 s and comes back.
        stopProcess(sender)
        let lost = subscriber.waitFor(timeout: 15) { events in events.contains { topic($0) == "status/cam/" && event($0) == "reconnecting" } }
        #expect(lost, "status/cam/ reports the loss")
        Thread.sleep(forTimeInterval: 2)
        sender = try startLiveSender(url: udp + "?pkt_size=1316", size: "320x240", seconds: 60)
        let back = subscriber.waitFor(timeout: 30) { events in
            guard let gap = events.firstIndex(where: { topic($0) == "status/cam/" && event($0) == "gap" }) else { return false }
            return events[gap...].contains { topic($0) == "captions/cam/" }
        }
        #expect(back, "a gap status, then captions again: \(pipeline.errorOutput)")
        let heartbeat = subscriber.events.last { topic($0) == "status/_pipeline/" && event($0) == "heartbeat" }
        #expect(heartbeat != nil)

        // Ctrl-C: drained, end-of-stream published last for the camera.
        pipeline.signal(SIGINT)
        #expect(pipeline.waitForExit(timeout: 30) == 0, "\(pipeline.errorOutput)")
        #expect(subscriber.waitFor(timeout: 10) { events in events.contains { topic($0) == "status/cam/" && event($0) == "end_of_stream" } })
        let statusEvents = subscriber.events.filter { topic($0) == "status/cam/" }.compactMap(event)
        #expect(statusEvents.first == "started" && statusEvents.last == "end_of_stream", "\(statusEvents)")

        // No caption window spans the outage: the gap ends the window at the last frame before it.
        let gap = try #require(subscriber.events.first { topic($0) == "status/cam/" && event($0) == "gap" })
        let gapData = header(gap)["data"] as? [String: Any] ?? [:]
        let outageStart = try #require(gapData["after_seconds"] as? Double)
        let outageEnd = outageStart + (gapData["duration_s"] as? Double ?? 0)
        #expect(outageEnd - outageStart > 1, "\(gapData)")
        for caption in subscriber.events.filter({ topic($0) == "captions/cam/" }) {
            let start = header(caption)["pts_start"] as? Double ?? 0, end = header(caption)["pts_end"] as? Double ?? 0
            #expect(!(start < outageStart + 0.01 && end > outageEnd - 0.01), "caption [\(start), \(end)] spans the outage [\(outageStart), \(outageEnd)]")
        }
    }
}
