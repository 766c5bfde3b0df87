import Foundation
import Testing
import SightlineFuzzTargets
import SightlineTestSupport

/// Every seed of the fuzz corpus and every crasher the fuzzers ever found
/// (Tests/Fuzz/corpus/TARGET, Tests/Fuzz/regressions/TARGET) goes through its parser again:
/// a crash here fails the whole test run, as it would have crashed a user's.
@Suite struct FuzzRegressionTests {
    static func files(_ kind: String, _ target: FuzzTarget) -> [String] {
        let folder = repositoryRoot + "/Tests/Fuzz/\(kind)/\(target.rawValue)"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { folder + "/" + $0 }
    }

    @Test(arguments: FuzzTarget.allCases)
    func seedsAndCrashersRunClean(target: FuzzTarget) throws {
        let seeds = Self.files("corpus", target)
        #expect(!seeds.isEmpty, "every fuzz target has seeds in Tests/Fuzz/corpus/\(target.rawValue)")
        for path in seeds + Self.files("regressions", target) {
            let data = try #require(FileManager.default.contents(atPath: path))
            target.run(Array(data))
        }
    }
}
