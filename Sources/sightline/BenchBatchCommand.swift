import ArgumentParser
import Foundation
import SightlineCore
import SightlineMedia
import SightlineModels

/// `sightline bench batch`: Pipelines/batch.yaml against a Python baseline doing the same job
/// (Samples/baseline/batch_baseline.py: ffmpeg CLI + onnxruntime + RapidOCR + pyzmq), same
/// models, same clip, same core count, measured in the same run; then their outputs compared.
struct BenchBatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "The batch pipeline vs a Python baseline (ffmpeg CLI + onnxruntime + pyzmq) on a 720p clip; prints the speed ratio and output agreement.",
        discussion: "Needs python3 with onnxruntime, onnx, tokenizers, pyzmq and rapidocr-onnxruntime==1.4.4 (pip install them).")

    @Option(help: "Clip to process (default: a 30 s 720p clip made from the bundled sample).") var input: String?
    @Option(help: "Runs of each; the best time counts.") var runs: Int = 2
    @Option(help: "Cores for both (onnxruntime intra-op threads; the pipeline file's node threads).") var threads: Int = 2
    @Option(help: "Python with the baseline's packages.") var python: String = "python3"
    @Flag(help: "Also time the pipeline without its index node, interleaved with the full runs, and print what writing the index costs (target ≤ 5 %).")
    var indexOverhead = false
    @Flag(help: "Skip the Python baseline (with --index-overhead: time only the two pipelines).") var noBaseline = false
    @Flag(help: "Also print both times extrapolated to one hour of the clip's kind of video (target: ours ≤ 3 minutes on 2 cores): the clip's first 5 s are timed as well, so start-up counts once, as in one hour-long file.")
    var hour = false
    @Option(help: "Our sampling: adaptive (batch.yaml as shipped: every cut's first frame, up to 2 frames/s where the picture changes, fewer where it holds still) or fixed (exactly 2 frames/s, as the baseline). The baseline always samples 2 frames/s.")
    var sampling: String = "adaptive"
    @OptionGroup var cache: ModelCacheOption

    func run() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        if noBaseline {
            guard indexOverhead else { throw ValidationError("--no-baseline leaves nothing to compare: add --index-overhead") }
            try measureIndexOverhead(clip: try input ?? Self.defaultClip())
            return
        }
        let python = try findExecutable(self.python)
        let check = Process()
        check.executableURL = URL(fileURLWithPath: python)
        check.arguments = ["-c", "import onnxruntime, onnx, tokenizers, zmq, rapidocr_onnxruntime"]
        check.standardError = FileHandle.nullDevice
        try check.run()
        check.waitUntilExit()
        guard check.terminationStatus == 0 else {
            throw ValidationError("the baseline needs: \(self.python) -m pip install onnxruntime onnx tokenizers pyzmq rapidocr-onnxruntime==1.4.4")
        }
        guard ["adaptive", "fixed"].contains(sampling) else { throw ValidationError("--sampling is adaptive or fixed, not '\(sampling)'") }
        let clip = try input ?? Self.defaultClip()
        let models = try prepareModels(python: python)
        let work = NSTemporaryDirectory() + "sightline-bench-batch-\(getpid())"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let pipeline = repositoryFile("Pipelines/batch.yaml")
        let baseline = repositoryFile("Samples/baseline/batch_baseline.py")
        let me = ownExecutable()
        print("sightline bench batch — \(clip), \(sampling == "adaptive" ? "ours shot-aware (≤ 2 frames/s), baseline 2 frames/s" : "2 sampled frames/s"), \(threads) cores, best of \(runs); ratio = baseline time ÷ ours (target ≥ 1.5)")

        let ourOut = work + "/ours", theirOut = work + "/baseline.jsonl"
        // The short runs write elsewhere: the whole clip's outputs are compared below.
        func timeOurs(_ input: String, output: String = ourOut) throws -> Double {
            try? FileManager.default.removeItem(atPath: output)
            let started = monotonicSeconds()
            _ = try runTool(me, ["run", pipeline, "--input", input, "--output", output, "--set", "files.resume=false",
                                 "--set", "out.endpoint=pub+bind:tcp://127.0.0.1:\(Self.freeTCPPort())",
                                 "--set", "labels.threads=\(threads)", "--set", "nsfw.threads=\(threads)", "--set", "ocr.threads=\(threads)",
                                 "--progress", "off", "--quiet", "--set", "files.sampling=\(sampling)"])
            return monotonicSeconds() - started
        }
        func timeBaseline(_ input: String, output: String = theirOut) throws -> Double {
            let started = monotonicSeconds()
            _ = try runTool(python, [baseline, input, "--models", models, "--out", output, "--threads", "\(threads)",
                                     "--endpoint", "tcp://127.0.0.1:\(Self.freeTCPPort())"])
            return monotonicSeconds() - started
        }
        // --hour also times the clip's first seconds, so start-up (loading models, which an
        // hour-long file pays once) and the cost per second of video come apart: see `HourFit`.
        let short = hour ? try HourFit.shortClip(of: clip, seconds: HourFit.shortSeconds, in: work) : nil
        var ours: [Double] = [], theirs: [Double] = [], oursShort: [Double] = [], theirsShort: [Double] = []
        for run in 0..<runs {
            ours.append(try timeOurs(clip))
            theirs.append(try timeBaseline(clip))
            var line = String(format: "  run %d: sightline %.2f s, python baseline %.2f s", run + 1, ours.last ?? 0, theirs.last ?? 0)
            if let short {
                oursShort.append(try timeOurs(short, output: work + "/ours-short"))
                theirsShort.append(try timeBaseline(short, output: work + "/baseline-short.jsonl"))
                line += String(format: "; first %.0f s: sightline %.2f s, python baseline %.2f s", HourFit.shortSeconds, oursShort.last ?? 0, theirsShort.last ?? 0)
            }
            print(line)
        }
        let best = (ours.min() ?? .infinity, theirs.min() ?? .infinity)
        print(String(format: "sightline %.2f s   python baseline %.2f s   ratio %.2f× %@", best.0, best.1, best.1 / best.0,
                     best.1 / best.0 >= 1.5 ? "(target met)" : "(target 1.5× not met)"))
        if let short {
            guard let seconds = (try? MediaProbe.probe(url: clip, timeout: 10))?.durationSeconds, seconds > HourFit.shortSeconds,
                  let shortSeconds = (try? MediaProbe.probe(url: short, timeout: 10))?.durationSeconds, shortSeconds > 0, shortSeconds < seconds else {
                throw ValidationError("cannot read the durations of \(clip) and its first \(HourFit.shortSeconds) s to extrapolate to an hour")
            }
            let fits = [HourFit(short: (shortSeconds, oursShort.min() ?? .infinity), long: (seconds, best.0)),
                        HourFit(short: (shortSeconds, theirsShort.min() ?? .infinity), long: (seconds, best.1))]
            for (name, fit) in zip(["sightline", "python baseline"], fits) {
                print(String(format: "  %@: start-up %.2f s, then %.3f s per second of video", name, fit.startup, fit.perSecond))
            }
            let (ourHour, theirHour) = (fits[0].minutes(forSeconds: 3600), fits[1].minutes(forSeconds: 3600))
            print(String(format: "one hour of this video (start-up once, fitted on %.1f s and %.1f s): sightline %.1f min, python baseline %.1f min %@",
                         shortSeconds, seconds, ourHour, theirHour, ourHour <= 3 ? "(target ≤ 3 min met)" : "(target ≤ 3 min not met)"))
            print(String(format: "  (the %.0f s clip's time × %.0f, start-up paid every time: sightline %.1f min, python baseline %.1f min)",
                         seconds, 3600 / seconds, best.0 * 3600 / seconds / 60, best.1 * 3600 / seconds / 60))
            // The part no model choice changes: decoding as batch.yaml does (its files node's
            // `mode: nonref`: reference frames, and skipped frames again around a possible cut)
            // and sampling.
            var decodeTimes: [Double] = []
            for _ in 0..<runs {
                let started = monotonicSeconds()
                _ = try runTool(me, ["decode", clip, "--mode", "nonref"] + (sampling == "adaptive" ? ["--adaptive"] : []) + ["--fps", "2"])
                decodeTimes.append(monotonicSeconds() - started)
            }
            let decodeHour = (decodeTimes.min() ?? .infinity) * 3600 / seconds / 60
            print(String(format: "  decoding and sampling alone (sightline decode, no model): %.1f min per hour, %.0f %% of the 3-minute target",
                         decodeHour, decodeHour / 3 * 100))
        }
        let frameRate = (try? MediaProbe.probe(url: clip, timeout: 10))?.streams.first { $0.isDefaultVideo }?.frameRate ?? 25
        try compare(ours: ourOut + "/" + URL(fileURLWithPath: clip).lastPathComponent + ".jsonl", baseline: theirOut, frameRate: frameRate)
        if indexOverhead { try measureIndexOverhead(clip: clip) }
    }

    /// batch.yaml as shipped against the same file without its `index` node, runs interleaved
    /// so drift in the machine's speed hits both alike.
    func measureIndexOverhead(clip: String) throws {
        let pipeline = repositoryFile("Pipelines/batch.yaml")
        let text = try String(contentsOfFile: pipeline, encoding: .utf8)
        var lines = text.components(separatedBy: "\n")
        guard let start = lines.firstIndex(where: { $0.hasPrefix("  index:") }) else { throw ValidationError("\(pipeline) has no index node to leave out") }
        var end = start + 1
        while end < lines.count, lines[end].hasPrefix("    ") || lines[end].trimmingCharacters(in: .whitespaces).hasPrefix("#") { end += 1 }
        lines.removeSubrange(start..<end)
        let withoutIndex = lines.joined(separator: "\n").replacingOccurrences(of: ", index\n", with: "\n")
        guard !withoutIndex.contains("index\n"), withoutIndex != text else { throw ValidationError("could not take the index node out of \(pipeline)") }
        let work = NSTemporaryDirectory() + "sightline-bench-index-\(getpid())"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        // Beside the shipped file, so its relative paths (the moderation policy) still resolve.
        let variant = URL(fileURLWithPath: pipeline).deletingLastPathComponent().path + "/.batch-without-index-\(getpid()).yaml"
        try withoutIndex.write(toFile: variant, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: variant) }
        print("index overhead — \(clip), batch.yaml with and without its index node, \(threads) cores, interleaved, best of \(runs)")
        var with: [Double] = [], without: [Double] = []
        for run in 0..<runs {
            for (file, into) in [(pipeline, "with"), (variant, "without")] {
                let out = work + "/" + into
                try? FileManager.default.removeItem(atPath: out)
                let started = monotonicSeconds()
                _ = try runTool(ownExecutable(), ["run", file, "--input", clip, "--output", out, "--set", "files.resume=false",
                                                  "--set", "out.endpoint=pub+bind:tcp://127.0.0.1:\(Self.freeTCPPort())",
                                                  "--set", "labels.threads=\(threads)", "--set", "nsfw.threads=\(threads)", "--set", "ocr.threads=\(threads)",
                                                  "--progress", "off", "--quiet"])
                let seconds = monotonicSeconds() - started
                if into == "with" { with.append(seconds) } else { without.append(seconds) }
            }
            print(String(format: "  run %d: with index %.2f s, without %.2f s", run + 1, with.last ?? 0, without.last ?? 0))
        }
        let indexed = FileManager.default.fileExists(atPath: work + "/with/sightline-index.sqlite")
        guard indexed, !FileManager.default.fileExists(atPath: work + "/without/sightline-index.sqlite") else {
            throw ValidationError("the runs did not differ by their index as expected")
        }
        let a = with.min() ?? .infinity, b = without.min() ?? .infinity
        let overhead = (a / b - 1) * 100
        print(String(format: "with index %.2f s   without %.2f s   overhead %+.1f %% %@", a, b, overhead, overhead <= 5 ? "(target ≤ 5 % met)" : "(target ≤ 5 % MISSED)"))
    }

    /// Do both produce the same results? Per sampled frame: top-1 label, NSFW score, OCR text.
    /// The baseline stamps each frame with its slot's start (k/2 s); ours carry the frame's own
    /// time. A frame of ours is the baseline's frame of its slot when it is the slot's first
    /// frame (less than one frame after the slot starts); only those pairs are compared, so
    /// under shot-aware sampling the frames both analysed are compared and no others.
    func compare(ours: String, baseline: String, frameRate: Double) throws {
        func load(_ path: String) throws -> [(kind: String, time: Double, data: [String: Any])] {
            try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").compactMap { line in
                guard let json = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let header = json["header"] as? [String: Any], let kind = header["kind"] as? String,
                      let data = header["data"] as? [String: Any] else { return nil }
                return (kind, (header["pts_start"] as? Double) ?? -1, data)
            }
        }
        let a = try load(ours), b = try load(baseline)
        func bySlot(_ rows: [(kind: String, time: Double, data: [String: Any])], _ kind: String, firstOnly: Bool) -> [Int: [String: Any]] {
            var out: [Int: [String: Any]] = [:]
            for row in rows where row.kind == kind {
                let slot = Int((row.time * 2 + 1e-6).rounded(.down))
                if firstOnly, row.time - Double(slot) / 2 >= 1 / max(frameRate, 1) - 1e-6 { continue }
                out[slot] = row.data
            }
            return out
        }
        let (la, lb) = (bySlot(a, "labels", firstOnly: true), bySlot(b, "labels", firstOnly: false))
        let frames = Set(la.keys).intersection(lb.keys)
        let top1 = { (d: [String: Any]) in ((d["labels"] as? [[String: Any]])?.first?["label"] as? String) ?? "" }
        let agree = frames.filter { top1(la[$0] ?? [:]) == top1(lb[$0] ?? [:]) }.count
        let (na, nb) = (bySlot(a, "nsfw", firstOnly: true), bySlot(b, "nsfw", firstOnly: false))
        let nsfwDiff = Set(na.keys).intersection(nb.keys).map { abs(((na[$0]?["score"] as? Double) ?? 0) - ((nb[$0]?["score"] as? Double) ?? 0)) }.max() ?? 0
        let (oa, ob) = (bySlot(a, "ocr", firstOnly: true), bySlot(b, "ocr", firstOnly: false))
        let ocrFrames = Set(oa.keys).intersection(ob.keys)
        let ocrEqual = ocrFrames.filter { (oa[$0]?["text"] as? String ?? "") == (ob[$0]?["text"] as? String ?? "") }.count
        print("outputs: \(a.filter { $0.kind == "labels" }.count) vs \(lb.count) sampled frames, \(frames.count) the same frame; top-1 label agrees on \(agree)/\(frames.count); "
              + String(format: "largest NSFW score difference %.4f; ", nsfwDiff) + "OCR text equal on \(ocrEqual)/\(ocrFrames.count) frames; "
              + "captions \(a.filter { $0.kind == "captions" }.count) vs \(b.filter { $0.kind == "captions" }.count)")
    }

    /// The bundled sample (bigbuckbunny, 1280×720) looped to 30 s, encoded once and cached.
    static func defaultClip() throws -> String {
        try benchClip("batch-720p-30s.mp4", encoding: ["-stream_loop", "6"], input: ["-t", "30", "-g", "50"], hint: ", or pass --input")
    }

    /// The baseline's model folder: the same files Sightline loads (ONNX as is; the .pth and
    /// the safetensors exported to ONNX by Scripts/reference), label names, tokenizer.
    func prepareModels(python: String) throws -> String {
        let store = cache.store
        for manifest in [ModelZoo.openNSFW, ModelZoo.efficientNetLite0, ModelZoo.ppOCR, ModelZoo.miniLM] { try store.fetch(manifest) }
        let dir = cacheRoot() + "/bench/baseline-models"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        func link(_ source: String, _ name: String) throws {
            let target = dir + "/" + name
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.createSymbolicLink(atPath: target, withDestinationPath: source)
        }
        try link(try store.verify(ModelZoo.openNSFW), "open_nsfw.onnx")
        let ocr = ModelZoo.ppOCR
        try link(try store.verify(ocr), "ch_PP-OCRv4_det_infer.onnx")
        try link(try store.verify(ocr, companion: ocr.companions[0]), "ch_PP-OCRv4_rec_infer.onnx")
        try link(try store.verify(ocr, companion: ocr.companions[1]), "ch_ppocr_mobile_v2.0_cls_infer.onnx")
        let minilm = ModelZoo.miniLM
        guard let tokenizer = minilm.companions.first(where: { $0.fileInWheel.hasSuffix("/tokenizer.json") }) else {
            throw ValidationError("the MiniLM manifest lists no tokenizer.json")
        }
        try link(try store.verify(minilm, companion: tokenizer), "tokenizer.json")
        try ImageNetLabels.names.joined(separator: "\n").write(toFile: dir + "/imagenet.txt", atomically: true, encoding: .utf8)
        let scripts = BenchInferCommand.referenceScripts
        if !FileManager.default.fileExists(atPath: dir + "/efficientnet-lite0.onnx") {
            _ = try runTool(python, [scripts + "/efficientnet_reference.py", try store.verify(ModelZoo.efficientNetLite0), dir + "/efficientnet-lite0.onnx"])
        }
        if !FileManager.default.fileExists(atPath: dir + "/minilm.onnx") {
            _ = try runTool(python, [scripts + "/minilm_onnx.py", try store.verify(minilm), dir + "/minilm.onnx"])
        }
        return dir
    }

    static func freeTCPPort() -> Int { Int.random(in: 40000..<50000) }
}

/// One hour extrapolated from two runs of different length: time = start-up + perSecond × the
/// video's seconds. The whole clip's time × (3600 / its length) would charge start-up (loading
/// and packing the models, a second or more) once per clip-length of video, while one hour-long
/// file pays it once.
struct HourFit {
    /// The short run's length: long enough for several sampled frames and a cut, short against the clip.
    static let shortSeconds = 5.0

    let startup: Double
    let perSecond: Double

    /// short and long: (video seconds, wall seconds). A negative start-up (noise on a fast
    /// start) counts as none, and the long run alone then sets the rate.
    init(short: (seconds: Double, time: Double), long: (seconds: Double, time: Double)) {
        let slope = (long.time - short.time) / (long.seconds - short.seconds)
        let intercept = short.time - slope * short.seconds
        startup = max(0, intercept)
        perSecond = intercept < 0 ? long.time / long.seconds : slope
    }

    func minutes(forSeconds seconds: Double) -> Double { (startup + perSecond * seconds) / 60 }

    /// The clip's first `seconds`, stream-copied (the bench clip has a keyframe every 2 s, so
    /// the cut ends on a frame boundary and nothing is re-encoded).
    static func shortClip(of clip: String, seconds: Double, in folder: String) throws -> String {
        let suffix = URL(fileURLWithPath: clip).pathExtension
        let path = folder + "/first-seconds." + (suffix.isEmpty ? "mp4" : suffix)
        _ = try runTool(try findExecutable("ffmpeg"), ["-v", "error", "-y", "-i", clip, "-t", String(format: "%.3f", seconds), "-map", "0:v:0", "-c", "copy", path])
        return path
    }
}

/// A benchmark clip made once from the bundled sample (bigbuckbunny) with ffmpeg and cached in
/// the cache's `bench/` folder. `encoding` goes before the input, `input` after it.
func benchClip(_ name: String, from sampleName: String = "bigbuckbunny.mp4", encoding: [String] = [], input: [String], hint: String = "") throws -> String {
    try cachedBenchMedia(name) { partial in
        let sample = cacheRoot() + "/samples/" + sampleName
        guard FileManager.default.fileExists(atPath: sample) else {
            throw ValidationError("no sample clip at \(sample): run Scripts/fetch-sample (or Scripts/demo) first" + hint)
        }
        _ = try runTool(try findExecutable("ffmpeg"), ["-v", "error", "-y"] + encoding + ["-i", sample] + input
                        + ["-c:v", "libx264", "-preset", "medium", "-pix_fmt", "yuv420p", partial])
    }
}

/// A file in the cache's `bench/` folder, made once: `make` writes it to the partial path
/// given (an .mp4 name, so ffmpeg picks the container), which is then renamed into place, so an
/// interrupted run never leaves a half-written clip under the real name.
func cachedBenchMedia(_ name: String, make: (_ partialPath: String) throws -> Void) throws -> String {
    let root = cacheRoot()
    let path = root + "/bench/" + name
    if FileManager.default.fileExists(atPath: path) { return path }
    try FileManager.default.createDirectory(atPath: root + "/bench", withIntermediateDirectories: true)
    try make(path + ".partial.mp4")
    try FileManager.default.moveItem(atPath: path + ".partial.mp4", toPath: path)
    return path
}

/// This executable, to run pipelines as a child process.
func ownExecutable() -> String {
    URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
}
