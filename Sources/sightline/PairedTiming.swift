import Foundation
import SightlineCore

/// A reference runtime (onnxruntime, LiteRT) kept running in a Python process that times a
/// block of calls per request (Scripts/reference/paired_runs.py), so `bench infer` can
/// alternate short blocks of its own calls with the reference's. Timed as one long block each,
/// one after the other, the ratio of the same two binaries moved between 1.0 and 2.1 from run
/// to run on this shared 2-core machine.
final class ReferenceRunner {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let errors: URL
    private var buffered: [UInt8] = []
    private let command: String

    /// Starts `script` with `arguments` (their RUNS argument must be `paired`) and waits until
    /// it has loaded the model and warmed up.
    init(python: String, script: String, arguments: [String]) throws {
        command = "\(python) \(script) \(arguments.joined(separator: " "))"
        errors = FileManager.default.temporaryDirectory.appendingPathComponent("sightline-reference-\(getpid())-\(UInt32.random(in: 0 ... .max)).log")
        guard FileManager.default.createFile(atPath: errors.path, contents: nil) else {
            throw SightlineError.toolFailed(command: command, reason: "cannot create \(errors.path) for its stderr")
        }
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script] + arguments
        process.standardInput = input
        process.standardOutput = output
        // A file, not a pipe: nobody reads stderr while the runs go on, and a full pipe would stall it.
        process.standardError = try FileHandle(forWritingTo: errors)
        try process.run()
        let ready = try readLine()
        guard ready.contains("\"ready\"") else { throw failure("expected a ready line, got: \(ready.prefix(200))") }
    }

    deinit {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: errors)
    }

    /// `calls` calls of the reference made back to back, each in milliseconds as it measured them.
    func time(calls: Int) throws -> [Double] {
        try input.fileHandleForWriting.write(contentsOf: Data("\(calls)\n".utf8))
        let line = try readLine()
        let times = line.split(separator: " ").compactMap { Double($0) }.filter { $0.isFinite && $0 >= 0 }
        guard times.count == calls else { throw failure("expected \(calls) times in milliseconds, got: \(line.prefix(200))") }
        return times
    }

    private func readLine() throws -> String {
        while true {
            if let newline = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffered[..<newline], as: UTF8.self)
                buffered.removeSubrange(...newline)
                return line
            }
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw failure("it exited before answering") }
            buffered.append(contentsOf: chunk)
        }
    }

    private func failure(_ reason: String) -> SightlineError {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        let log = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
        return .toolFailed(command: command, reason: "\(reason)\(log.isEmpty ? "" : "; stderr: " + String(log.suffix(400)))")
    }
}

/// Our time and the reference's over rounds: in each, a block of `calls` calls of ours and a
/// block of the reference's, alternating which side goes first. A round's time is its block's
/// median. Before each block the other side is left `settle` to go quiet: onnxruntime's worker
/// threads spin on after a call, and run straight after its block our 2-thread MiniLM lost a
/// third of its speed (measured: 82–88 sentences/s against 112–136 with a pause of 20 ms or
/// more). The pause lets cores idle, and a parked thread wakes late on a virtual machine, so
/// each block's first call is left out.
struct PairedTimes {
    var ours: [Double] = []
    var theirs: [Double] = []
    /// The fastest single call of each side over all rounds. On a host whose neighbours take
    /// cache and cores at random, interference only ever adds time, so the fastest calls'
    /// ratio moves least from run to run (medians of the same two binaries swung 0.84–1.61).
    var oursFastest = Double.infinity
    var theirsFastest = Double.infinity

    static let settle: useconds_t = 30_000
    /// Timed calls per block (each block also makes one more, left out).
    static let callsPerBlock = 5

    static func measure(rounds: Int, calls: Int = callsPerBlock, reference: ReferenceRunner, ours call: () throws -> Void) throws -> PairedTimes {
        var times = PairedTimes()
        func timeOurs() throws {
            usleep(Self.settle)
            var block: [Double] = []
            for _ in 0...calls { block.append(try BenchSearchCommand.time(call)) }
            let kept = Array(block.dropFirst())
            times.ours.append(median(kept))
            times.oursFastest = min(times.oursFastest, kept.min() ?? .infinity)
        }
        func timeTheirs() throws {
            usleep(Self.settle)
            let kept = Array(try reference.time(calls: calls + 1).dropFirst())
            times.theirs.append(median(kept))
            times.theirsFastest = min(times.theirsFastest, kept.min() ?? .infinity)
        }
        for round in 0..<max(1, rounds) {
            if round % 2 == 0 { try timeOurs(); try timeTheirs() } else { try timeTheirs(); try timeOurs() }
        }
        return times
    }

    /// Each round's ours ÷ theirs, sorted.
    var ratios: [Double] { zip(ours, theirs).map { $0 / $1 }.sorted() }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    var oursMedian: Double { Self.median(ours) }
    var theirsMedian: Double { Self.median(theirs) }
    var ratioMedian: Double { Self.median(ratios) }
    /// Our fastest call ÷ the reference's fastest, as "0.93".
    var fastestRatio: String { String(format: "%.2f", oursFastest / theirsFastest) }
    /// The middle half of the rounds' ratios (first to third quartile), as "1.02–1.10".
    var ratioSpread: String {
        let r = ratios
        guard r.count >= 4 else { return "-" }
        return String(format: "%.2f–%.2f", r[r.count / 4], r[(3 * r.count) / 4])
    }
}
