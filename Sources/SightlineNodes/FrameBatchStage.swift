import SightlineCore
import SightlineGraph

/// Dynamic batching for a model node: frames (and the records that arrive between them) are
/// held until `batch` frames are waiting or the oldest has waited `max_wait_ms`; then the model
/// runs once on the whole batch (a batch of at least `threads` frames is split across cores)
/// and every item goes out in arrival order, each frame preceded by its own records.
final class FrameBatchStage {
    typealias Infer = ([Frame]) throws -> [[Record]]

    static let options: [OptionSpec] = [
        OptionSpec("batch", .int, default: .int(1), min: 1, max: 256, help: "frames per inference call (dynamic batching; frames of all sources share a batch)"),
        OptionSpec("max_wait_ms", .double, default: .double(100), min: 0, max: 600_000, help: "longest a frame waits for its batch to fill (bounds the latency batching adds)"),
    ]

    private var batcher: DynamicBatcher<Item>
    private let infer: Infer

    init(options: NodeOptions, infer: @escaping Infer) {
        batcher = DynamicBatcher(maxBatch: options.int("batch") ?? 1, maxWait: (options.double("max_wait_ms") ?? 100) / 1000)
        self.infer = infer
    }

    var deadline: Double? { batcher.deadline }

    func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        switch item {
        case .frame:
            if batcher.add(item, isWork: true, now: context.clock.now()) { try release(emit: emit) }
        case .record:
            // Nothing to overtake when no frame is waiting.
            if batcher.isEmpty { emit(item) } else { _ = batcher.add(item, isWork: false, now: context.clock.now()) }
        case .endOfStream:
            // The scheduler forwards end-of-stream right after this: everything held goes first.
            try release(emit: emit)
        case .status:
            emit(item)
        }
    }

    func flush(context: any NodeContext, emit: (Item) -> Void) throws {
        if batcher.isDue(now: context.clock.now()) { try release(emit: emit) }
    }

    /// Runs the model on the held frames and emits everything in order. If the batch fails,
    /// each frame is retried alone so one bad frame costs only itself; failed frames are not
    /// passed on, and the first error is rethrown (the scheduler reports it on the status topic).
    private func release(emit: (Item) -> Void) throws {
        let items = batcher.take()
        let frames = items.compactMap { item -> Frame? in if case .frame(let f) = item { f } else { nil } }
        guard !frames.isEmpty else {
            items.forEach(emit)
            return
        }
        var results: [[Record]?]
        var firstError: Error?
        do {
            let batch = try infer(frames)
            precondition(batch.count == frames.count, "model node returned \(batch.count) results for \(frames.count) frames")
            results = batch.map { Optional($0) }
        } catch {
            guard frames.count > 1 else { throw error }
            results = frames.map { frame in
                do { return try infer([frame]).first } catch {
                    if firstError == nil { firstError = error }
                    return nil
                }
            }
        }
        var next = 0
        for item in items {
            guard case .frame = item else {
                emit(item)
                continue
            }
            defer { next += 1 }
            guard let records = results[next] else { continue }
            for record in records { emit(.record(record)) }
            emit(item)
        }
        if let firstError { throw firstError }
    }
}
