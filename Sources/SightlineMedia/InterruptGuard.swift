import CFFmpeg
import Foundation
import Synchronization

/// Bounds every blocking libavformat call. FFmpeg polls the interrupt callback while it waits
/// on I/O; returning 1 aborts the call with AVERROR_EXIT. A deadline makes open and read time
/// out even where a protocol ignores `rw_timeout`, and `cancel()` (any thread) stops a source.
final class InterruptGuard: Sendable {
    private let deadline = Atomic<UInt64>(0)  // monotonic ns; 0 = none
    private let cancelled = Atomic<Bool>(false)
    private let expired = Atomic<Bool>(false)

    func arm(seconds: Double?) {
        expired.store(false, ordering: .relaxed)
        guard let seconds, seconds > 0 else {
            deadline.store(0, ordering: .relaxed)
            return
        }
        deadline.store(DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9), ordering: .relaxed)
    }

    func cancel() { cancelled.store(true, ordering: .relaxed) }
    var isCancelled: Bool { cancelled.load(ordering: .relaxed) }
    /// True when the last armed deadline fired.
    var didExpire: Bool { expired.load(ordering: .relaxed) }

    fileprivate func shouldInterrupt() -> Bool {
        if cancelled.load(ordering: .relaxed) { return true }
        let limit = deadline.load(ordering: .relaxed)
        if limit != 0 && DispatchTime.now().uptimeNanoseconds > limit {
            expired.store(true, ordering: .relaxed)
            return true
        }
        return false
    }

    /// Installs the callback; the format context must not outlive `self` (FormatContext keeps
    /// a strong reference).
    func install(on context: UnsafeMutablePointer<AVFormatContext>) {
        sl_set_interrupt_callback(context, interruptTrampoline, Unmanaged.passUnretained(self).toOpaque())
    }
}

private func interruptTrampoline(_ opaque: UnsafeMutableRawPointer?) -> Int32 {
    guard let opaque else { return 0 }
    return Unmanaged<InterruptGuard>.fromOpaque(opaque).takeUnretainedValue().shouldInterrupt() ? 1 : 0
}
