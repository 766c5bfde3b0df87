import ArgumentParser

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print ratios against reference tools measured in the same run.",
        subcommands: [BenchDecodeCommand.self, BenchPeopleCommand.self, BenchModerationCommand.self, BenchUnderstandCommand.self, BenchBusCommand.self, BenchSchedulerCommand.self, BenchInferCommand.self, BenchAttentionCommand.self, BenchBatchCommand.self, BenchLiveCommand.self, BenchMemoryCommand.self, BenchDensityCommand.self, BenchDeltaCommand.self, BenchSparseCommand.self, BenchShotsCommand.self, BenchSearchCommand.self, BenchRetrievalCommand.self, BenchClusterCommand.self, BenchEdgeCommand.self, BenchVLMCommand.self]
    )
}
