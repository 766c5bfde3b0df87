import Foundation
import Testing
import SightlineTestSupport

/// Pipelines/batch.yaml on a folder of real-photo clips: killed mid-folder, run again, every
/// file done exactly once with complete outputs; bad inputs fail alone and are retried.
@Suite(.serialized) struct BatchPipelineTests {
    let bin = sightlineBinary()
    let root = repositoryRoot

    private func jsonLines(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    private func data(_ message: [String: Any]) -> [String: Any] {
        ((message["header"] as? [String: Any])?["data"] as? [String: Any]) ?? [:]
    }

    private func files(in folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
    }

    @Test func killedMidFolderThenResumedDoesEveryFileExactlyOnce() throws {
        let base = Fixtures.shared.directory + "/batch-resume-\(getpid())"
        try? FileManager.default.removeItem(atPath: base)
        let videos = base + "/videos", out = base + "/out"
        try FileManager.default.createDirectory(atPath: videos + "/more", withIntermediateDirectories: true)
        let photos = try SamplePhotos.all()
        let clips = [("chelsea.png", "a-cat.mp4"), ("coffee.png", "b-coffee.mp4"), ("motorcycle_left.png", "c-moped.mov"), ("astronaut.png", "more/d-astronaut.mkv")]
        for (photo, name) in clips {
            try Tool.run("ffmpeg", ["-v", "error", "-y", "-loop", "1", "-i", try #require(photos[photo]), "-vf", "scale=480:-2",
                                    "-t", "4", "-r", "25", "-c:v", "libx264", "-pix_fmt", "yuv420p", videos + "/" + name])
        }
        try "not a video".write(toFile: videos + "/notes.txt", atomically: true, encoding: .utf8)
        let arguments = ["run", root + "/Pipelines/batch.yaml", "--input", videos,
                         "--output", out,
                         "--set", "out.endpoint=pub+bind:tcp://127.0.0.1:\(freePort())",
                         "--set", "moderation.policy=\(root)/Pipelines/moderation-policy.yaml",
                         "--set", "captions.policy=\(root)/Pipelines/moderation-policy.yaml", "--progress", "on",
                         // Every sampled frame once is what this test counts: fixed 2 frames/s.
                         "--set", "files.sampling=fixed"]

        // First run: killed (SIGKILL, nothing flushed) once the first file is complete
        // everywhere: its output renamed into place, its journal line written and its shots in
        // the search index. The jsonl and index sinks finish a file separately, and a file
        // journaled but not indexed is redone by design (IndexSink forgets it from the journal),
        // so waiting for the journal alone made this test flaky under load: the kill sometimes
        // fell between the two and the "finished" file was rightly done again.
        let first = try LineStreamingProcess(bin, arguments)
        let deadline = Date().addingTimeInterval(120)
        func journaled() -> Bool {
            ((try? String(contentsOfFile: out + "/sightline-done.jsonl", encoding: .utf8)) ?? "").contains("a-cat.mp4")
        }
        func indexed() -> Bool {
            guard FileManager.default.fileExists(atPath: out + "/sightline-index.sqlite"),
                  let hits = try? Tool.run(bin, ["search", "static camera", "--text-only", "--source", "a-cat.mp4", "--index", out, "--json"], check: false),
                  hits.status == 0 else { return false }
            return hits.stdout.contains("a-cat.mp4")
        }
        while Date() < deadline, !(FileManager.default.fileExists(atPath: out + "/a-cat.mp4.jsonl") && journaled() && indexed()) {
            Thread.sleep(forTimeInterval: 0.02)
        }
        first.kill()
        _ = first.waitForExit(timeout: 10)
        let afterKill = files(in: out).filter { $0.hasSuffix(".mp4.jsonl") || $0.hasSuffix(".mov.jsonl") || $0.hasSuffix(".mkv.jsonl") }
        #expect(afterKill.contains("a-cat.mp4.jsonl"))
        #expect(afterKill.count < 4, "the kill came before the end of the folder: \(afterKill)")
        let firstOutput = try Data(contentsOf: URL(fileURLWithPath: out + "/a-cat.mp4.jsonl"))

        // Second run: skips the finished file, redoes the interrupted one, does the rest.
        let second = try Tool.run(bin, arguments)
        #expect(second.stderr.contains("ETA"), "progress bar: \(second.stderr)")
        // At least the first file is skipped (another may have finished before the kill too).
        let skipped = second.stderr.firstMatch(of: /(\d+) already done/).flatMap { Int($0.1) } ?? 0
        #expect(skipped >= 1 && skipped <= afterKill.count, "skipped \(skipped) of \(afterKill.count) finished: \(second.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/a-cat.mp4.jsonl")) == firstOutput, "a finished file is not redone")
        #expect(!files(in: out).contains { $0.hasSuffix(".partial") }, "\(files(in: out))")

        let journal = try jsonLines(out + "/sightline-done.jsonl")
        let journalPaths = journal.compactMap { $0["path"] as? String }
        #expect(journalPaths.count == 4 && Set(journalPaths).count == 4, "each file recorded once: \(journalPaths)")
        // Outputs mirror each file's path under the input folder (more/d-astronaut.mkv).
        for (_, name) in clips {
            let file = name
            let messages = try jsonLines(out + "/\(file).jsonl")
            let source = "files/\(file)"
            #expect(messages.allSatisfy { ($0["header"] as? [String: Any])?["source"] as? String == source }, "\(file)")
            let labels = messages.filter { ($0["topic"] as? String) == "labels/\(source)/" }
            let indices = labels.compactMap { data($0)["frame_index"] as? Int }
            #expect(indices.count == 8 && Set(indices).count == 8, "\(file): 4 s at 2 frames/s, each frame once: \(indices)")
            let ends = messages.filter { data($0)["event"] as? String == "end_of_stream" }
            #expect(ends.count == 1 && data(ends[0])["completed"] as? Bool == true, "\(file)")
            let starts = messages.filter { data($0)["event"] as? String == "started" }
            #expect(starts.count == 1, "\(file) was started once in its output")
            #expect(messages.contains { ($0["topic"] as? String) == "captions/\(source)/" })
            let segments = messages.filter { ($0["topic"] as? String) == "embeddings/\(source)/" && data($0)["scope"] as? String == "segment" }
            #expect(Set(segments.compactMap { data($0)["dimension"] as? Int }) == [1280, 384], "\(file): both segment embeddings")
        }
        let cat = try jsonLines(out + "/a-cat.mp4.jsonl").filter { ($0["topic"] as? String) == "captions/files/a-cat.mp4/" }
        #expect(cat.contains { (data($0)["caption"] as? String)?.contains("cat") == true })

        // Third run: nothing left to do.
        let third = try Tool.run(bin, arguments + ["--progress", "off"])
        #expect(third.stderr.contains("0 frames"), "\(third.stderr)")

        // The search index in the output folder holds each file once, killed run or not
        // (every caption of these stills says "static camera").
        func search(_ words: [String]) throws -> [[String: Any]] {
            try Tool.run(bin, ["search"] + words + ["--index", out, "--json"]).stdout.split(separator: "\n").compactMap {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }
        let everything = try search(["static camera", "--text-only", "--limit", "100"])
        let indexed = everything.compactMap { $0["source"] as? String }
        #expect(indexed.sorted() == clips.map { "files/\($0.1)" }.sorted(), "one shot per 4 s still, each file once: \(indexed)")
        // Text queries land on the right file, by words and by meaning, with a thumbnail.
        for (query, file) in [("a cat", "a-cat.mp4"), ("cup of coffee", "b-coffee.mp4"), ("kitten", "a-cat.mp4"), ("a scooter", "c-moped.mov")] {
            let hits = try search([query, "--limit", "3"])
            #expect((hits.first?["source"] as? String) == "files/\(file)", "\(query): \(hits.map { ($0["source"] ?? "", $0["caption"] ?? "") })")
            let thumbnail = try #require(hits.first?["thumbnail"] as? String)
            #expect(try Data(contentsOf: URL(fileURLWithPath: thumbnail)).prefix(2) == Data([0xFF, 0xD8]), "a JPEG thumbnail: \(thumbnail)")
        }
        // The filters (source, time range) narrow to the one shot. No ImageNet class is an
        // astronaut, so the shot is found by meaning alone at a low similarity: the floor is
        // lowered here because this checks the filters, not retrieval (bench retrieval does).
        let astronaut = try search(["astronaut", "--source", "d-astronaut", "--from", "0:01", "--to", "0:03", "--min-similarity", "0.1"])
        #expect(astronaut.allSatisfy { $0["source"] as? String == "files/more/d-astronaut.mkv" } && astronaut.count == 1)
        let outside = try search(["astronaut", "--source", "d-astronaut", "--from", "0:05", "--to", "0:09", "--min-similarity", "0.1"])
        #expect(outside.isEmpty, "the shot ends at 3.52 s: \(outside)")
        let bad = try Tool.run(bin, ["search", "cat", "--index", base + "/nowhere"], check: false)
        #expect(bad.status != 0 && bad.stderr.contains("no index in"), "\(bad.stderr)")

        // A kill between the journal line and the index's transaction (the two sinks finish a
        // file separately) leaves a file journaled but not indexed; made here by deleting its
        // rows. The next run must redo that file, not skip it and leave the index without it.
        try Tool.run("python3", ["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"PRAGMA foreign_keys=ON\"); "
                                 + "c.execute(\"DELETE FROM videos WHERE location LIKE '%a-cat.mp4'\"); c.commit()", out + "/sightline-index.sqlite"])
        let fourth = try Tool.run(bin, arguments + ["--progress", "off"])
        #expect(fourth.stderr.contains("1 processed") && fourth.stderr.contains("3 already done"), "\(fourth.stderr)")
        #expect(try search(["static camera", "--text-only", "--limit", "100"]).compactMap { $0["source"] as? String }.sorted()
                == clips.map { "files/\($0.1)" }.sorted())
    }

    /// batch.yaml as shipped samples shot-aware: two still photos cut at frame 75 give each shot
    /// its first frame (the cut's own) and one about 1 s later, and the last frame: 5 frames, not
    /// 14 at 2 per second; the second shot starts on the cut's frame.
    @Test func shotAwareSamplingAnalysesEachShotAndCutsOnTheExactFrame() throws {
        let base = Fixtures.shared.directory + "/batch-adaptive-\(getpid())"
        try? FileManager.default.removeItem(atPath: base)
        let videos = base + "/videos", out = base + "/out"
        try FileManager.default.createDirectory(atPath: videos, withIntermediateDirectories: true)
        let photos = try SamplePhotos.all()
        try Tool.run("ffmpeg", ["-v", "error", "-y",
                                "-loop", "1", "-framerate", "25", "-i", try #require(photos["chelsea.png"]),
                                "-loop", "1", "-framerate", "25", "-i", try #require(photos["coffee.png"]),
                                "-filter_complex", "[0:v]scale=480:360,setsar=1,trim=end_frame=75[a];[1:v]scale=480:360,setsar=1,trim=end_frame=100[b];[a][b]concat=n=2:v=1:a=0,format=yuv420p[v]",
                                "-map", "[v]", "-c:v", "libx264", videos + "/cat-then-coffee.mp4"])
        let run = try Tool.run(bin, ["run", root + "/Pipelines/batch.yaml", "--input", videos, "--output", out,
                                     "--set", "out.endpoint=pub+bind:tcp://127.0.0.1:\(freePort())",
                                     "--set", "moderation.policy=\(root)/Pipelines/moderation-policy.yaml",
                                     "--set", "captions.policy=\(root)/Pipelines/moderation-policy.yaml", "--progress", "off"], check: false)
        #expect(run.status == 0, "\(run.stderr)")
        let messages = try jsonLines(out + "/cat-then-coffee.mp4.jsonl")
        let indices = messages.filter { ($0["topic"] as? String)?.hasPrefix("labels/") == true }.compactMap { data($0)["frame_index"] as? Int }
        // batch.yaml decodes with `mode: nonref`: the keeps 1 s on land on the first frame the
        // decoder did not skip (within a B-frame run); the cut is decoded again and exact.
        #expect(indices.count == 5, "each shot's start and 1 s on, the last frame: \(indices)")
        if indices.count == 5 {
            #expect(indices[0] == 0 && indices[2] == 75 && indices[4] == 174, "the first frame, the cut's own frame, the last frame: \(indices)")
            #expect((25...28).contains(indices[1]) && (100...103).contains(indices[3]), "each shot's frame 1 s on: \(indices)")
        }
        let shots = messages.filter { ($0["topic"] as? String)?.hasPrefix("shots/") == true }
        let starts = shots.compactMap { ($0["header"] as? [String: Any])?["pts_start"] as? Double }
        #expect(starts.count == 2 && abs((starts.last ?? 0) - 3.0) < 1e-6, "the second shot starts at frame 75 (3.0 s): \(starts)")
        let captions = messages.filter { ($0["topic"] as? String)?.hasPrefix("captions/") == true }
        #expect(captions.count == 2, "a caption per shot")
    }

    @Test func aBrokenFileFailsAloneAndIsRetriedNextTime() throws {
        let base = Fixtures.shared.directory + "/batch-broken-\(getpid())"
        try? FileManager.default.removeItem(atPath: base)
        let videos = base + "/videos", out = base + "/out"
        try FileManager.default.createDirectory(atPath: videos, withIntermediateDirectories: true)
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=10", "-t", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p", videos + "/good.mp4"])
        try Data(repeating: 0x42, count: 5000).write(to: URL(fileURLWithPath: videos + "/broken.mp4"))
        // A file that opens but yields no frame: a faststart MP4 cut just after its moov (the
        // sample table promises frames the file does not hold). It once counted as done, exit 0.
        let whole = base + "/whole.mp4"
        try Tool.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=10", "-t", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                                "-movflags", "+faststart", whole])
        let bytes = try Data(contentsOf: URL(fileURLWithPath: whole))
        let mdat = try #require(bytes.range(of: Data("mdat".utf8)))
        try bytes.prefix(mdat.upperBound + 64).write(to: URL(fileURLWithPath: videos + "/cut.mp4"))
        let pipeline = base + "/stats-batch.yaml"
        try """
        pipeline: stats-batch
        output: \(out)
        nodes:
          files: {type: files, url: x, resume: true}
          stats: {type: frame_stats}
          results: {type: jsonl, dir: .}
        edges:
          - files -> stats
          - stats -> results
        """.write(toFile: pipeline, atomically: true, encoding: .utf8)
        // A killed run's pipeline-wide output left behind (it flaked the resume test): replaced.
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try Data("stale\n".utf8).write(to: URL(fileURLWithPath: out + "/pipeline.jsonl.partial"))
        let first = try Tool.run(bin, ["run", pipeline, "--input", videos], check: false)
        #expect(first.status == 3, "a failed file makes the exit status 3: \(first.stderr)")
        #expect(!files(in: out).contains("pipeline.jsonl.partial") && files(in: out).contains("pipeline.jsonl"), "\(files(in: out))")
        #expect(first.stderr.contains("broken.mp4"))
        #expect(first.stderr.contains("cut.mp4") && first.stderr.contains("no video frame could be decoded"), "\(first.stderr)")
        // The summary counts files, not the one source node (it said "1 source(s)").
        #expect(first.stderr.contains("from 3 file(s) (1 processed, 2 failed, 0 already done)"), "\(first.stderr)")
        #expect(files(in: out).contains("good.mp4.jsonl"))
        #expect(!files(in: out).contains("broken.mp4.jsonl"))
        #expect(!files(in: out).contains("cut.mp4.jsonl"))
        let stats = try jsonLines(out + "/good.mp4.jsonl").filter { ($0["topic"] as? String) == "stats/files/good.mp4/" }
        #expect(stats.count == 20)
        // Re-run: only the broken files are tried again.
        let second = try Tool.run(bin, ["run", pipeline, "--input", videos, "--progress", "on"], check: false)
        #expect(second.status == 3)
        // The bar does not claim the failed files were done (it said "100% 2/2 files").
        #expect(second.stderr.contains("0/2 files (2 failed, 1 already done)"), "\(second.stderr)")
        #expect(try jsonLines(out + "/sightline-done.jsonl").count == 1)

        // Where results go does not change them: still done. Other settings do: redone.
        let sameJob = try Tool.run(bin, ["run", pipeline, "--input", videos, "--progress", "on", "--set", "results.vectors=true"], check: false)
        #expect(sameJob.stderr.contains("(2 failed, 1 already done)"), "\(sameJob.stderr)")
        let otherSettings = try Tool.run(bin, ["run", pipeline, "--input", videos, "--progress", "on", "--set", "files.fps=5"], check: false)
        #expect(otherSettings.stderr.contains("1/3 files (2 failed)"), "the journal's settings differ, so good.mp4 is redone: \(otherSettings.stderr)")
        #expect(try jsonLines(out + "/good.mp4.jsonl").filter { ($0["topic"] as? String) == "stats/files/good.mp4/" }.count == 10)

        let missing = try Tool.run(bin, ["run", pipeline, "--input", base + "/nowhere"], check: false)
        #expect(missing.status != 0 && missing.stderr.contains("no such file or folder"), "\(missing.stderr)")
    }
}
