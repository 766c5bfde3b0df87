import Dispatch

/// Runs a task's jobs (and its child tasks') on a serial dispatch queue of its own instead of
/// Swift's shared pool. That pool has one thread per core — two on a 2-core box — and any
/// caller that blocks one of them (a synchronous wait, a blocking read) stalls every task queued
/// behind it. `transcribe` decodes audio with blocking FFmpeg calls and its progress decides
/// when captions may go out, so it keeps a queue of its own. Awaiting (an HTTP answer) does not
/// hold the queue: other jobs run meanwhile.
final class QueueTaskExecutor: TaskExecutor {
    private let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label)
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }
}
