import Foundation
import Testing
import SightlineTestSupport

/// `sightline serve` with real cameras (ffmpeg pushing live MPEG-TS over UDP), the HTTP API
/// driven by curl, and `sightline subscribe` reading the bus.
@Suite(.serialized) struct ServiceTests {
    let bin = sightlineBinary()

    private func http(_ method: String, _ url: String, _ body: String? = nil) throws -> (status: Int, body: String) {
        var arguments = ["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, url, "--max-time", "10"]
        if let body { arguments += ["-H", "Content-Type: application/json", "-d", body] }
        let result = try Tool.run("curl", arguments, check: false)
        var lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let status = Int(lines.popLast() ?? "") ?? 0
        return (status, lines.joined(separator: "\n"))
    }

    private func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
    }

    private func sources(_ base: String) throws -> [String: [String: Any]] {
        let list = json(try http("GET", base + "/sources").body)["sources"] as? [[String: Any]] ?? []
        return Dictionary(uniqueKeysWithValues: list.compactMap { entry in (entry["id"] as? String).map { ($0, entry) } })
    }

    private func waitUntil(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.25)
        }
        return try condition()
    }

    @Test func aCameraComesAndGoesOverHTTPWhileTwoOthersStreamWithoutAGap() throws {
        let bus = freePort()
        let pipeline = Fixtures.shared.directory + "/serve-\(getpid()).yaml"
        try """
        pipeline: service-test
        heartbeat: 1
        defaults: {policy: drop-oldest, capacity: 4}
        nodes:
          cam:
            type: source
            url: udp://127.0.0.1:1
            fps: 5
            size: 64x48
            read_timeout: 3
            reconnect_attempts: 1000
            reconnect_max_delay: 1
          stats: {type: frame_stats}
          out: {type: publish, endpoint: "pub+bind:tcp://127.0.0.1:\(bus)", when_full: drop}
        edges:
          - cam -> stats
          - stats -> out
        """.write(toFile: pipeline, atomically: true, encoding: .utf8)

        let service = try LineStreamingProcess(bin, ["serve", "--pipeline", pipeline, "--listen", "127.0.0.1:0"])
        defer { service.kill() }
        #expect(waitUntil(20) { service.errorOutput.contains("serving pipeline") }, "\(service.errorOutput)")
        let port = try #require(service.errorOutput.split(separator: "\n").first { $0.contains("serving pipeline") }
            .flatMap { $0.split(separator: ":").last?.split(separator: " ").first }.flatMap { Int($0) })
        let base = "http://127.0.0.1:\(port)"
        #expect(try http("GET", base + "/healthz").status == 200)
        #expect(try http("GET", base + "/readyz").status == 200)

        let subscriber = try LineStreamingProcess(bin, ["subscribe", "tcp://127.0.0.1:\(bus)", "--until-end", "--idle-timeout", "30"])
        defer { subscriber.kill() }
        var senders: [Process] = []
        defer { senders.forEach { stopProcess($0) } }
        var ports: [String: Int] = [:]
        for camera in ["cam1", "cam2", "cam3"] { ports[camera] = freePort(udp: true) }

        // Two cameras stream; a bad URL is refused at once and disturbs nothing.
        for camera in ["cam1", "cam2"] {
            let added = try http("POST", base + "/sources", "{\"id\":\"\(camera)\",\"url\":\"udp://127.0.0.1:\(ports[camera]!)\"}")
            #expect(added.status == 201, "\(added.body)")
            senders.append(try startLiveSender(url: "udp://127.0.0.1:\(ports[camera]!)?pkt_size=1316", size: "160x120", rate: 10))
        }
        #expect(try waitUntil(30) { try sources(base).values.filter { $0["state"] as? String == "connected" }.count == 2 })
        let bad = try http("POST", base + "/sources", "{\"id\":\"cam9\",\"url\":\"rtps://camera/stream\"}")
        #expect(bad.status == 400 && bad.body.contains("unknown scheme 'rtps'"), "\(bad.body)")
        let duplicate = try http("POST", base + "/sources", "{\"id\":\"cam1\",\"url\":\"udp://127.0.0.1:9\"}")
        #expect(duplicate.status == 409)
        let badOption = try http("POST", base + "/sources", "{\"id\":\"cam8\",\"url\":\"udp://127.0.0.1:9\",\"options\":{\"fps\":\"fast\"}}")
        #expect(badOption.status == 400 && badOption.body.contains("fps"))

        // A third camera comes and goes.
        Thread.sleep(forTimeInterval: 2)
        let added = try http("POST", base + "/sources", "{\"id\":\"cam3\",\"url\":\"udp://127.0.0.1:\(ports["cam3"]!)\",\"options\":{\"fps\":2}}")
        #expect(added.status == 201)
        let third = try startLiveSender(url: "udp://127.0.0.1:\(ports["cam3"]!)?pkt_size=1316", size: "160x120", rate: 10)
        defer { stopProcess(third) }
        #expect(try waitUntil(30) { (try sources(base)["cam3"]?["frames_in"] as? Int ?? 0) > 4 })
        #expect(try http("DELETE", base + "/sources/cam3").status == 200)
        #expect(try waitUntil(10) { try sources(base)["cam3"]?["state"] as? String == "ended" })
        #expect(try http("DELETE", base + "/sources/cam3").status == 404)
        Thread.sleep(forTimeInterval: 2)

        let list = try sources(base)
        for camera in ["cam1", "cam2"] {
            let entry = list[camera] ?? [:]
            #expect(entry["state"] as? String == "connected", "\(entry)")
            #expect(entry["gap_seconds"] as? Double == 0 && entry["reconnects"] as? Int == 0, "\(entry)")
            #expect((entry["fps"] as? Double ?? 0) > 2, "\(entry)")
        }
        let metrics = try http("GET", base + "/metrics")
        #expect(metrics.status == 200)
        for line in ["sightline_source_frames_in_total{source=\"cam1\"}", "sightline_source_decode_fps{source=\"cam2\"}",
                     "sightline_source_reconnects_total{source=\"cam1\"}", "sightline_source_gap_seconds{source=\"cam1\"}",
                     "sightline_source_latency_seconds{source=\"cam1\",quantile=\"0.99\"}", "sightline_node_items_total{node=\"stats\"}",
                     "sightline_node_busy_seconds_total{node=\"stats\"}", "sightline_edge_queue_depth{from=\"cam1\",to=\"stats\"}",
                     "sightline_edge_dropped_total{from=\"cam2\",to=\"stats\"}", "sightline_process_resident_memory_bytes"] {
            #expect(metrics.body.contains(line), "missing \(line)")
        }

        service.signal(SIGTERM)
        #expect(service.waitForExit(timeout: 30) == 0, "\(service.errorOutput)")
        #expect(subscriber.waitForExit(timeout: 40) == 0)
        let headers = subscriber.output.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .compactMap { $0["header"] as? [String: Any] }
        func events(_ source: String) -> [String] {
            headers.filter { $0["source"] as? String == source && $0["kind"] as? String == "status" }
                .compactMap { ($0["data"] as? [String: Any])?["event"] as? String }
        }
        #expect(events("cam3").contains("end_of_stream"), "removing a camera publishes its end-of-stream")
        for camera in ["cam1", "cam2"] {
            #expect(!events(camera).contains("gap") && !events(camera).contains("reconnecting"), "\(camera): \(events(camera))")
            #expect(events(camera).last == "end_of_stream")
            // Frames kept coming while cam3 came and went: no hole in media time.
            let times = headers.filter { $0["source"] as? String == camera && $0["kind"] as? String == "stats" }
                .compactMap { $0["pts_start"] as? Double }
            let holes = zip(times, times.dropFirst()).map { $1 - $0 }.filter { $0 > 1.0 }
            #expect(times.count > 20 && holes.isEmpty, "\(camera): \(times.count) frames, holes \(holes)")
        }
        #expect(!events("_hold").contains("end_of_stream") && !events("cam").contains("end_of_stream"), "templates stay silent")
    }
}
