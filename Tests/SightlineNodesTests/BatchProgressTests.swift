import Testing
import SightlineCore
@testable import SightlineNodes

/// The batch progress estimate: failed files end their share of the work without counting as done.
@Suite struct BatchProgressTests {
    let progress = BatchProgress(files: [
        .init(source: "f/a", duration: 10, skip: false), .init(source: "f/b", duration: 10, skip: false),
        .init(source: "f/c", duration: 20, skip: false), .init(source: "f/d", duration: 5, skip: true),
    ])

    @Test func failedFilesAreNotDone() {
        let e = progress.estimate(delivered: ["f/a": (10, true), "f/c": (5, false)], failed: ["f/b"], elapsed: 10)
        #expect(e.filesDone == 1 && e.filesFailed == 1 && e.filesToProcess == 3 && e.skipped == 1)
        #expect(abs(e.fraction - 25.0 / 40) < 1e-9)
        #expect(BatchProgress.render(e).contains("1/3 files (1 failed, 1 already done)"))
        let end = progress.estimate(delivered: ["f/a": (10, true), "f/c": (20, true)], failed: ["f/b"], elapsed: 20)
        #expect(BatchProgress.render(end).contains("100%  2/3 files (1 failed, 1 already done)"))
    }
}
