import Foundation
import Testing
import SightlineModels
import SightlineTestSupport

/// Pipelines/understand.yaml on a real photo (scikit-image's cat) with a caption burnt in:
/// labels, visual embedding, NSFW score and on-screen text arrive as records.
@Suite(.serialized) struct UnderstandPipelineTests {
    let bin = sightlineBinary()

    @Test func labelsNsfwAndTextFromARealPhoto() throws {
        let photo = try #require(try SamplePhotos.all()["chelsea.png"])
        let video = Fixtures.shared.directory + "/cat-news-\(getpid()).mp4"
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-loop", "1", "-i", photo, "-vf",
                                "scale=640:-2,drawtext=fontfile=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf:text='BREAKING NEWS':fontsize=40:fontcolor=white:box=1:boxcolor=black:x=20:y=h-60",
                                "-t", "2", "-r", "25", "-c:v", "libx264", "-pix_fmt", "yuv420p", video])
        let jsonl = Fixtures.shared.directory + "/understand-\(getpid()).jsonl"
        let root = repositoryRoot
        let run = try Tool.run(bin, ["run", root + "/Pipelines/understand.yaml", "--input", video, "--set", "file.path=\(jsonl)",
                                     "--set", "out.endpoint=pub+bind:tcp://127.0.0.1:\(freePort())",
                                     "--set", "moderation.policy=\(root)/Pipelines/moderation-policy.yaml",
                                     "--set", "captions.policy=\(root)/Pipelines/moderation-policy.yaml", "--quiet"])
        #expect(run.stderr.contains("2 frames"))
        let lines = try String(contentsOfFile: jsonl, encoding: .utf8).split(separator: "\n")
        let messages = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        func data(_ kind: String) -> [[String: Any]] {
            records(kind).compactMap { $0["data"] as? [String: Any] }
        }
        func records(_ kind: String) -> [[String: Any]] {
            messages.filter { ($0["topic"] as? String) == "\(kind)/cam1/" }.compactMap { $0["header"] as? [String: Any] }
        }
        let labels = data("labels")
        #expect(labels.count == 2)
        let top = (labels.first?["labels"] as? [[String: Any]])?.compactMap { $0["label"] as? String } ?? []
        #expect(!Set(top.prefix(3)).isDisjoint(with: ["Egyptian cat", "tabby", "tiger cat"]), "\(top)")
        #expect(data("embeddings").contains { $0["dimension"] as? Int == 1280 })
        let semantic = data("embeddings").filter { $0["space"] as? String == SemanticVectors.defaultMethod.space && $0["scope"] as? String == "frame" }
        #expect(semantic.count == 2 && semantic.allSatisfy { ($0["text"] as? String)?.contains("BREAKING NEWS") == true })
        let nsfw = data("nsfw").compactMap { $0["score"] as? Double }
        #expect(nsfw.count == 2 && nsfw.allSatisfy { $0 < 0.2 })
        let text = data("ocr").compactMap { $0["text"] as? String }
        #expect(text.count == 2 && text.allSatisfy { $0.contains("BREAKING NEWS") }, "\(text)")
        #expect(data("moderation").isEmpty, "a cat with a news caption raises no flag")
        let captions = data("captions").compactMap { $0["caption"] as? String }
        #expect(captions.count == 1 && captions.allSatisfy { $0.contains("cat") && $0.contains("BREAKING NEWS") }, "\(captions)")
        // Provenance on every result: the source file and its content hash, the pipeline hash.
        let digest = try Tool.run("sha256sum", [video]).stdout.split(separator: " ").first.map(String.init)
        let results = messages.filter { ($0["header"] as? [String: Any])?["kind"] as? String != "status" }
        #expect(!results.isEmpty)
        for message in results {
            let header = try #require(message["header"] as? [String: Any])
            let origin = header["origin"] as? [String: Any]
            #expect(origin?["url"] as? String == video && origin?["sha256"] as? String == digest, "\(header)")
            #expect(((header["pipeline"] as? [String: Any])?["hash"] as? String)?.count == 64)
        }
        #expect(records("labels").allSatisfy { $0["ingest_wallclock"] is Double })
        let provenance = messages.compactMap { ($0["header"] as? [String: Any])?["provenance"] as? [[String: Any]] }.flatMap { $0 }
        #expect(provenance.contains { ($0["name"] as? String) == "pp-ocrv4" && ($0["sha256"] as? String)?.count == 64 })
    }

    @Test func onScreenProfanityRaisesAndEndsAFlag() throws {
        // Three seconds of a sign, the middle second carrying a word on the policy's list.
        let video = Fixtures.shared.directory + "/profanity-\(getpid()).mp4"
        let font = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "color=c=white:s=480x160:r=25", "-t", "3", "-vf",
                                "drawtext=fontfile=\(font):text='Oh damn':fontsize=48:fontcolor=black:x=40:y=50:enable='between(t,1,2)',"
                                + "drawtext=fontfile=\(font):text='All good':fontsize=48:fontcolor=black:x=40:y=50:enable='not(between(t,1,2))'",
                                "-c:v", "libx264", "-pix_fmt", "yuv420p", video])
        let jsonl = Fixtures.shared.directory + "/profanity-\(getpid()).jsonl"
        let root = repositoryRoot
        try Tool.run(bin, ["run", root + "/Pipelines/understand.yaml", "--input", video, "--set", "file.path=\(jsonl)",
                           "--set", "out.endpoint=pub+bind:tcp://127.0.0.1:\(freePort())",
                           "--set", "moderation.policy=\(root)/Pipelines/moderation-policy.yaml",
                           "--set", "captions.policy=\(root)/Pipelines/moderation-policy.yaml", "--quiet"])
        let all = try String(contentsOfFile: jsonl, encoding: .utf8)
        let captionData = all.split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { ($0["topic"] as? String) == "captions/cam1/" }
            .compactMap { ($0["header"] as? [String: Any])?["data"] as? [String: Any] }
        #expect(captionData.count == 1)
        #expect((captionData.first?["caption"] as? String)?.contains("Oh d***") == true, "the flagged word is masked")
        #expect(captionData.first?["flagged"] as? Bool == true)
        #expect(!captionData.contains { ($0["caption"] as? String)?.lowercased().contains("damn") == true }, "never published unmasked")
        let flags = try String(contentsOfFile: jsonl, encoding: .utf8).split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { ($0["topic"] as? String) == "moderation/cam1/" }
            .compactMap { $0["header"] as? [String: Any] }
        let events = flags.compactMap { ($0["data"] as? [String: Any]).map { ($0["event"] as? String ?? "", $0["category"] as? String ?? "") } }
        #expect(events.map(\.0) == ["flag_start", "flag_end"], "\(events)")
        #expect(events.allSatisfy { $0.1 == "profanity" })
        #expect(flags.first?["pts_start"] as? Double == 1)
        #expect(flags.last?["pts_end"] as? Double == 2)
        // A flag names the policy file (with its sha256) and the model whose evidence raised it.
        let provenance = (flags.first?["provenance"] as? [[String: Any]]) ?? []
        #expect(provenance.contains { $0["name"] as? String == "moderation-policy" && ($0["sha256"] as? String)?.count == 64 }, "\(provenance)")
        #expect(provenance.contains { $0["name"] as? String == "pp-ocrv4" && ($0["sha256"] as? String)?.count == 64 }, "\(provenance)")
    }
}
