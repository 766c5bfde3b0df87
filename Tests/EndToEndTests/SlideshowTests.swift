import Foundation
import Testing
import SightlineModels
import SightlineTestSupport

/// A slideshow of ten real photos, two seconds each, through Pipelines/understand.yaml: the
/// shots node finds every cut, captions name the photo's class or a concept above it (or hedge),
/// and text queries
/// embedded with MiniLM find the right shot by its segment embedding.
@Suite(.serialized) struct SlideshowTests {
    let bin = sightlineBinary()
    let root = repositoryRoot

    /// Photo, the ImageNet classes that are a correct reading of it, and a text query for it.
    static let slides: [(photo: String, truth: Set<String>)] = [
        ("chelsea.png", ["Egyptian cat", "tabby", "tiger cat"]),
        ("coffee.png", ["espresso", "cup", "coffee mug"]),
        ("motorcycle_left.png", ["moped", "motor scooter"]),
        ("camera.png", ["tripod", "reflex camera", "Polaroid camera"]),
        ("clock_motion.png", ["wall clock", "analog clock"]),
        ("rocket.jpg", ["missile", "projectile", "space shuttle"]),
        ("grace_hopper.jpg", ["military uniform"]),
        ("china.jpg", ["palace", "monastery", "pagoda", "stupa"]),
        ("flower.jpg", ["daisy"]),
        ("horse.png", ["sorrel"]),  // a black silhouette: hard on purpose
    ]

    @Test func cutsCaptionsAndTextSearchOnTenRealPhotos() throws {
        let photos = try SamplePhotos.all()
        let seconds = 2
        let video = Fixtures.shared.directory + "/understand-slideshow-\(UUID().uuidString).mp4"  // unique: suites run in parallel in one process
        var arguments = ["-v", "error", "-y"]
        for slide in Self.slides { arguments += ["-loop", "1", "-framerate", "25", "-t", "\(seconds)", "-i", try #require(photos[slide.photo])] }
        let scaled = Self.slides.indices.map {
            "[\($0):v]scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p[v\($0)]"
        }
        let concat = Self.slides.indices.map { "[v\($0)]" }.joined() + "concat=n=\(Self.slides.count):v=1:a=0[out]"
        arguments += ["-filter_complex", (scaled + [concat]).joined(separator: ";"), "-map", "[out]", "-r", "25", "-c:v", "libx264", video]
        try Tool.run("ffmpeg", arguments)

        let jsonl = Fixtures.shared.directory + "/understand-slideshow-\(UUID().uuidString).jsonl"
        try Tool.run(bin, ["run", root + "/Pipelines/understand.yaml", "--input", video, "--set", "file.path=\(jsonl)", "--set", "file.vectors=true",
                           "--set", "cam1.fps=2", "--set", "out.endpoint=pub+bind:tcp://127.0.0.1:\(freePort())",
                           "--set", "moderation.policy=\(root)/Pipelines/moderation-policy.yaml",
                           "--set", "captions.policy=\(root)/Pipelines/moderation-policy.yaml", "--quiet"])
        let messages = try String(contentsOfFile: jsonl, encoding: .utf8).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        func records(_ kind: String) -> [(data: [String: Any], header: [String: Any], vector: [Double]?)] {
            messages.filter { ($0["topic"] as? String) == "\(kind)/cam1/" }.compactMap { m in
                guard let header = m["header"] as? [String: Any], let data = header["data"] as? [String: Any] else { return nil }
                return (data, header, m["vector"] as? [Double])
            }
        }
        func span(_ header: [String: Any]) -> (Double, Double) {
            ((header["pts_start"] as? Double) ?? -1, (header["pts_end"] as? Double) ?? -1)
        }

        // Shots: one per photo, each cut within one frame (1/25 s) of the true cut.
        let shots = records("shots").map { span($0.header) }
        #expect(shots.count == Self.slides.count, "\(shots)")
        for (index, shot) in shots.enumerated() where index > 0 {
            #expect(abs(shot.0 - Double(index * seconds)) <= 1.0 / 25 + 1e-9, "shot \(index) starts at \(shot.0)")
        }

        // Captions: one per shot; the objects it names are the photo's class or a concept above
        // it (hedged: "a domestic cat" for a cat the model is unsure of the breed of).
        let captions = records("captions")
        #expect(captions.count == Self.slides.count)
        let hierarchy = try #require(ImageNetHierarchy.shared)
        var named = 0, wrong: [String] = []
        for (slide, caption) in zip(Self.slides, captions) {
            let phrases = caption.data["phrases"] as? [[String: Any]] ?? []
            let objects = phrases.first { $0["kind"] as? String == "objects" }?["text"] as? String ?? ""
            let tentative = objects.hasPrefix("possibly ")
            let concepts = objects.components(separatedBy: " and ").map {
                $0.replacingOccurrences(of: "^(possibly )?an? ", with: "", options: .regularExpression).replacingOccurrences(of: " \\(\\d+%\\)$", with: "", options: .regularExpression)
            }
            let truthLineage = Set(slide.truth.compactMap { ImageNetLabels.names.firstIndex(of: $0) }.flatMap { hierarchy.lineage[$0].map { hierarchy.nodes[$0].name } })
            let hit = concepts.contains { truthLineage.contains($0) }
            if hit { named += 1 } else if !objects.isEmpty && !tentative { wrong.append(slide.photo) }
            print("slideshow: \(slide.photo): \(hit ? "ok" : "MISS") — \(caption.data["caption"] as? String ?? "")")
        }
        // Hedged captions trade naming for being right: most photos named (at the class or a
        // concept above it), and a wrong name said as a fact only for the black silhouette.
        #expect(named >= 5, "\(named) of \(Self.slides.count) captions name the photo's class or a concept above it")
        #expect(wrong.allSatisfy { $0 == "horse.png" }, "named wrongly, without a hedge: \(wrong)")

        // Text search: MiniLM query vectors against the per-shot semantic embeddings.
        let segments = records("embeddings").filter { $0.data["scope"] as? String == "segment" && $0.data["space"] as? String == SemanticVectors.defaultMethod.space }
        #expect(segments.count == Self.slides.count)
        let queries: [(String, Int)] = [
            ("a cat", 0), ("a cup of coffee", 1), ("a motorbike", 2), ("a photographer with a camera", 3), ("a clock on the wall", 4),
            ("a rocket", 5), ("a woman in a navy uniform", 6), ("a temple", 7), ("a flower", 8),
        ]
        let embedder = try MiniLMEmbedder()
        let vectors = try embedder.embed(queries.map(\.0))
        var first = 0
        for ((query, expected), q) in zip(queries, vectors) {
            let scores = segments.map { segment in zip(segment.vector ?? [], q).reduce(0.0) { $0 + $1.0 * Double($1.1) } }
            let best = scores.indices.max { scores[$0] < scores[$1] } ?? -1
            if best == expected { first += 1 }
            print("slideshow: query “\(query)” → shot \(best) (expected \(expected))")
        }
        #expect(first * 3 >= queries.count * 2, "\(first) of \(queries.count) queries rank the right shot first")
    }
}
