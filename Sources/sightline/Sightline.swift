import ArgumentParser

@main
struct Sightline: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sightline",
        abstract: "Video understanding on plain CPUs: decode, sample, analyse, publish.",
        subcommands: [ProbeCommand.self, DecodeCommand.self, RunCommand.self, ValidateCommand.self, NodesCommand.self, SubscribeCommand.self, ModelsCommand.self, InferCommand.self, EmbedTextCommand.self, OCRCommand.self, BenchCommand.self]
    )
}
