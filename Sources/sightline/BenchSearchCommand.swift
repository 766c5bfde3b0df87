import ArgumentParser
import Foundation
import SightlineCore
import SightlineIndex
import SightlineModels

/// `bench search`: synthetic indexes of 10k, 100k and 1M shots (captions and labels from the
/// ImageNet class names, 384-d vectors clustered per class), then hybrid, full-text and vector
/// queries: p50/p95 latency, load time, memory. The vector scan's AVX2/F16C kernel is timed
/// against the portable loop on the same rows in the same run.
struct BenchSearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Search latency and memory on synthetic indexes of 10k, 100k and 1M shots (targets: p50 ≤ 20 ms at 10k, ≤ 100 ms at 1M).")

    @Option(help: "Index sizes in shots, comma-separated.") var sizes = "10000,100000,1000000"
    @Option(help: "Queries per size.") var queries = 60
    @Option(help: "Where to build the indexes (deleted afterwards).") var folder = NSTemporaryDirectory() + "sightline-bench-search"

    func run() throws {
        let counts = sizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty, counts.allSatisfy({ $0 >= 100 && $0 <= 5_000_000 }) else { throw ValidationError("--sizes: shot counts from 100 to 5000000") }
        guard queries >= 5 else { throw ValidationError("--queries must be at least 5") }
        let cpu = cpuName()
        print("bench search on \(cpu); vector kernel: \(VectorScan.hasVectorKernel ? "AVX2+F16C+FMA" : "portable only")")
        print(["shots", "build s", "db MB", "load s", "vec MB", "RSS+ MB", "hybrid p50", "p95", "text p50", "vector p50", "scan ms", "scan×\(VectorScan.defaultThreads) ms", "portable ms", "ratio", "target"]
            .map { $0.padding(toLength: 12, withPad: " ", startingAt: 0) }.joined())
        let names = ImageNetLabels.names
        let dimension = 384
        var generator = SplitMix(seed: 42)
        // One direction per class; shots of a class lie near it.
        let centres: [[Float]] = names.indices.map { _ in Self.unit((0..<dimension).map { _ in generator.gaussian() }) }
        for count in counts {
            let dir = folder + "/\(count)"
            try? FileManager.default.removeItem(atPath: dir)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let store = try IndexStore(folder: dir)
            let buildStart = Date()
            let perVideo = 1000
            for videoStart in stride(from: 0, to: count, by: perVideo) {
                var document = IndexDocument(video: .init(source: "files/v\(videoStart / perVideo).mp4", location: "/archive/v\(videoStart / perVideo).mp4",
                                                          sha256: nil, duration: Double(perVideo * 4), live: false, pipelineHash: nil))
                for i in 0..<min(perVideo, count - videoStart) {
                    let cls = Int(generator.next() % UInt64(names.count))
                    let other = Int(generator.next() % UInt64(names.count))
                    let start = Double(i * 4)
                    document.shots.append(.init(index: i, start: start, end: start + 4, endedBy: "cut", caption: "A \(names[cls]) beside a \(names[other]); a 4 s shot.",
                                                labelWords: "\(names[cls].lowercased()); \(names[other].lowercased())", text: i % 10 == 0 ? "EXIT \(i)" : "",
                                                people: i % 3, faces: i % 5 == 0 ? 1 : 0, flagged: i % 50 == 0))
                    let noisy = zip(centres[cls], (0..<dimension).map { _ in generator.gaussian() * 0.05 }).map { $0 + $1 }
                    document.vectors.append(.init(space: "minilm-384-conse", shotIndex: i, start: start, end: start + 4, vector: Self.unit(noisy)))
                }
                try store.replace(document)
            }
            let buildSeconds = Date().timeIntervalSince(buildStart)
            let dbBytes = (try? FileManager.default.attributesOfItem(atPath: dir + "/" + IndexStore.fileName)[.size] as? Int) ?? 0
            let rssBefore = Self.residentMegabytes()
            let engine = SearchEngine(store: store)
            try engine.refresh()
            let rssAfter = Self.residentMegabytes()

            var hybrid: [Double] = [], text: [Double] = [], vector: [Double] = []
            for q in 0..<queries {
                let cls = (q * 37) % names.count
                let queryVector = Self.unit(zip(centres[cls], (0..<dimension).map { _ in generator.gaussian() * 0.05 }).map { $0 + $1 })
                let words = names[cls]
                hybrid.append(try Self.time { _ = try engine.search(SearchQuery(text: words, limit: 10), queryVector: queryVector) })
                text.append(try Self.time { _ = try engine.search(SearchQuery(text: words, limit: 10), queryVector: nil) })
                vector.append(try Self.time { _ = try engine.search(SearchQuery(text: "", limit: 10), queryVector: queryVector) })
            }
            // The scan alone, vectorised and portable, on the same rows.
            var probe = VectorScan(dimension: dimension)
            let rows = min(count, 200_000)
            probe.reserve(rows)
            for i in 0..<rows { probe.append(id: Int64(i), vector: centres[i % centres.count]) }
            let query = centres[7]
            let fast = Self.median((0..<9).map { _ in Self.time { _ = probe.scores(query, threads: 1) } }) * Double(count) / Double(rows)
            let split = Self.median((0..<9).map { _ in Self.time { _ = probe.scores(query) } }) * Double(count) / Double(rows)
            let portable = Self.median((0..<5).map { _ in Self.time { _ = probe.scores(query, vectorised: false, threads: 1) } }) * Double(count) / Double(rows)

            let p50 = Self.percentile(hybrid, 0.5), p95 = Self.percentile(hybrid, 0.95)
            let target = count <= 10_000 ? 20.0 : (count >= 1_000_000 ? 100.0 : nil)
            let verdict = target.map { p50 <= $0 ? "≤\(Int($0)) met" : "≤\(Int($0)) MISSED" } ?? "-"
            print([String(count), String(format: "%.1f", buildSeconds), String(format: "%.0f", Double(dbBytes) / 1e6), String(format: "%.2f", engine.lastLoadSeconds),
                   String(format: "%.0f", Double(engine.vectorBytes) / 1e6), String(format: "%.0f", rssAfter - rssBefore),
                   String(format: "%.1f", p50), String(format: "%.1f", p95), String(format: "%.1f", Self.percentile(text, 0.5)), String(format: "%.1f", Self.percentile(vector, 0.5)),
                   String(format: "%.1f", fast), String(format: "%.1f", split), String(format: "%.1f", portable), String(format: "%.1fx", portable / max(fast, 1e-9)), verdict]
                .map { $0.padding(toLength: 12, withPad: " ", startingAt: 0) }.joined())
        }
        print("latencies in ms per query (limit 10; the vector scan splits over \(VectorScan.defaultThreads) cores from \(VectorScan.rowsPerThread * 2) rows); RSS+ is the resident memory the loaded engine added; scan (one core), scan×N (split) and portable (one core): the float16 dot-product pass alone, scaled to the index size; ratio = portable ÷ scan on one core")
    }

    static func unit(_ v: [Float]) -> [Float] {
        let norm = max(1e-12, v.reduce(0) { $0 + $1 * $1 }.squareRoot())
        return v.map { $0 / norm }
    }

    static func time(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
    }

    static func median(_ values: [Double]) -> Double { percentile(values, 0.5) }

    static func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
    }

    static func residentMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kb / 1024
    }
}

/// A small seeded generator: the same synthetic index every run.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func gaussian() -> Float {
        let u1 = max(Double(next() >> 11) / Double(1 << 53), 1e-12), u2 = Double(next() >> 11) / Double(1 << 53)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
    }
}
