import Foundation
import Testing
import SightlineTestSupport

private let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

/// The review page in a real browser (Debian's headless Chromium), served by `sightline serve`
/// from an index the batch pipeline built from three sample photos: search hits with
/// thumbnails that load, a video's filmstrip and timeline, and a verdict in the review queue.
@Suite(.serialized, .enabled(if: chromium != nil, "Chromium is not installed (Scripts/setup installs it)"))
struct ReviewPageTests {
    let bin = sightlineBinary()
    let root = repositoryRoot

    private func browser(_ url: String, screenshot: String? = nil) throws -> String {
        var arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,900", "--virtual-time-budget=8000",
                         "--user-data-dir=" + Fixtures.shared.directory + "/chromium-profile-\(getpid())"]
        if let screenshot { arguments.append("--screenshot=" + screenshot) } else { arguments.append("--dump-dom") }
        return try Tool.run(try #require(chromium), arguments + [url]).stdout
    }

    /// The page's DOM once `ready` holds, loading it again (a fresh browser) up to `attempts`
    /// times: under a loaded machine the page's script sometimes has not run within the virtual
    /// time budget (the DOM came back as the bare HTML). The last DOM is returned either way, so
    /// the caller's expectation still decides.
    private func browser(_ url: String, until ready: (String) -> Bool, attempts: Int = 3) throws -> String {
        var dom = ""
        for _ in 0..<attempts {
            dom = try browser(url)
            if ready(dom) { break }
        }
        return dom
    }

    private func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    @Test func searchFilmstripAndReviewQueueInAHeadlessBrowser() throws {
        let base = Fixtures.shared.directory + "/review-page-\(getpid())"
        try? FileManager.default.removeItem(atPath: base)
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let photos = try SamplePhotos.all()
        let slides = ["chelsea.png", "coffee.png", "rocket.jpg"]
        var arguments = ["-v", "error", "-y"]
        for slide in slides { arguments += ["-loop", "1", "-framerate", "25", "-t", "3", "-i", try #require(photos[slide])] }
        let scaled = slides.indices.map { "[\($0):v]scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p[v\($0)]" }
        arguments += ["-filter_complex", (scaled + [slides.indices.map { "[v\($0)]" }.joined() + "concat=n=\(slides.count):v=1:a=0[out]"]).joined(separator: ";"),
                      "-map", "[out]", "-r", "25", "-c:v", "libx264", base + "/photos.mp4"]
        try Tool.run("ffmpeg", arguments)
        try Tool.run(bin, ["run", root + "/Pipelines/batch.yaml", "--input", base + "/photos.mp4", "--output", base + "/out", "--quiet",
                           "--set", "out.endpoint=pub+bind:tcp://127.0.0.1:\(freePort())",
                           "--set", "moderation.policy=\(root)/Pipelines/moderation-policy.yaml", "--set", "captions.policy=\(root)/Pipelines/moderation-policy.yaml"])

        let reviewBus = "tcp://127.0.0.1:\(freePort())"
        let service = try LineStreamingProcess(bin, ["serve", "--index", base + "/out", "--listen", "127.0.0.1:0", "--review-bus", "pub+bind:" + reviewBus,
                                                     // The live view relays the same bus: the verdict comes back over the WebSocket.
                                                     "--live-bus", reviewBus])
        defer { service.kill() }
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !service.errorOutput.contains("review page for") { Thread.sleep(forTimeInterval: 0.1) }
        let port = try #require(service.errorOutput.split(separator: "\n").first { $0.contains("review page for") }
            .flatMap { $0.split(separator: ":").last?.split(separator: "/").first }.flatMap { Int($0) }, "\(service.errorOutput)")
        let site = "http://127.0.0.1:\(port)"

        // Search: the cat shot first, its thumbnail loaded in the browser.
        let results = try browser(site + "/?q=a%20cat")
        let firstHit = try #require(results.range(of: "<li class=\"hit\"").map { String(results[$0.lowerBound...].prefix(700)) }, "\(results.suffix(2000))")
        #expect(firstHit.contains("Egyptian cat"), "\(firstHit)")
        #expect(firstHit.contains("data-state=\"loaded\""), "the hit's thumbnail loads: \(firstHit)")
        #expect(!results.contains("data-state=\"broken\""))

        // The video: a filmstrip card and a timeline span per shot, the flagged rocket marked.
        let video = try browser(site + "/?video=files/photos.mp4&shot=2")
        #expect(count("class=\"shot-span", in: video) == 3, "\(video.suffix(3000))")
        #expect(count("<div class=\"shot", in: video) - count("<div class=\"shot-span", in: video) == 3)
        #expect(count("data-state=\"loaded\"", in: video) == 3, "three thumbnails load")
        #expect(video.contains("class=\"flag-span\""), "the weapons flag on the rocket shot")
        #expect(video.contains("class=\"shot flagged highlight\""), "the linked shot is highlighted")

        // Review: a verdict through the API shows on the queue page and in the report.
        let flags = try Tool.run("curl", ["-s", site + "/api/flags"]).stdout
        let flag = try #require(((try JSONSerialization.jsonObject(with: Data(flags.utf8)) as? [String: Any])?["flags"] as? [[String: Any]])?.first, "\(flags)")
        let id = try #require(flag["id"] as? Int)
        #expect(flag["category"] as? String == "weapons")
        // A real pyzmq subscriber hears the verdict on the bus, as a `review` message.
        let listener = try LineStreamingProcess("/usr/bin/env", ["python3", root + "/Samples/subscriber.py", reviewBus, "--topic", "review/", "--count", "1", "--idle-timeout", "30"])
        defer { listener.kill() }
        // The live view: the page's WebSocket opens in a real browser, and a WebSocket client
        // (Scripts/ws_client.py) receives the verdict relayed from the bus.
        let live = try browser(site + "/?live=1", until: { $0.contains("data-state=\"open\"") })
        #expect(live.contains("data-state=\"open\""), "the live view's WebSocket opened: \(live.suffix(1500))")
        let viewer = try LineStreamingProcess("/usr/bin/env", ["python3", root + "/Tests/EndToEndTests/Scripts/ws_client.py", "ws://127.0.0.1:\(port)/live", "1", "30"])
        defer { viewer.kill() }
        Thread.sleep(forTimeInterval: 1)  // the subscription reaches the publisher (ZeroMQ's slow joiner)
        let posted = try Tool.run("curl", ["-s", "-w", "\n%{http_code}", "-X", "POST", site + "/api/flags/\(id)/verdict", "-H", "Content-Type: application/json",
                                           "-d", #"{"decision":"dismissed","note":"a rocket on a launch pad","reviewer":"test reviewer"}"#]).stdout
        #expect(posted.hasSuffix("201"), "\(posted)")
        _ = listener.waitForExit(timeout: 30)
        let heard = try #require(listener.output.first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] },
                                 "subscriber: \(listener.output) \(listener.errorOutput)")
        let header = try #require(heard["header"] as? [String: Any])
        let data = try #require(header["data"] as? [String: Any])
        #expect(heard["topic"] as? String == "review/files/photos.mp4/" && header["kind"] as? String == "review")
        #expect(data["decision"] as? String == "dismissed" && data["reviewer"] as? String == "test reviewer" && data["flag_id"] as? Int == id
                && data["category"] as? String == "weapons", "\(data)")
        #expect(viewer.waitForExit(timeout: 30) == 0, "the live view's client: \(viewer.output) \(viewer.errorOutput)")
        let relayed = try #require(viewer.output.first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        #expect(relayed["topic"] as? String == "review/files/photos.mp4/" && (relayed["header"] as? [String: Any])?["kind"] as? String == "review", "\(relayed)")
        let queue = try browser(site + "/?review=1")
        #expect(queue.contains("Nothing waits for review."), "the only flag has a verdict: \(queue.suffix(1500))")
        let report = try Tool.run("curl", ["-s", site + "/api/reviews?format=csv"]).stdout
        #expect(report.contains("test reviewer,dismissed,weapons,") && report.contains("a rocket on a launch pad"), "\(report)")
        let refused = try Tool.run("curl", ["-s", "-w", "\n%{http_code}", "-X", "POST", site + "/api/flags/\(id)/verdict", "-d", #"{"decision":"maybe"}"#]).stdout
        #expect(refused.hasSuffix("400"), "\(refused)")

        // A screenshot of the filmstrip, kept as the test's artifact.
        let artifacts = root + "/.build/test-artifacts"
        try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
        _ = try browser(site + "/?video=files/photos.mp4&shot=2", screenshot: artifacts + "/review-page.png")
        let png = try Data(contentsOf: URL(fileURLWithPath: artifacts + "/review-page.png"))
        #expect(png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]) && png.count > 20_000, "a real screenshot: \(png.count) bytes")
        print("review page screenshot: \(artifacts)/review-page.png")
    }
}
