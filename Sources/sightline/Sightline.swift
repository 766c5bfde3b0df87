import ArgumentParser
import Foundation
import SightlineBus
import SightlineCore
import SightlineGraph
import SightlineInference
import SightlineKernels

@main
struct Sightline: ParsableCommand {
    /// Bumped with each release; `sightline --version` prints it with the bus schema.
    static let version = "0.5.0"

    static let configuration = CommandConfiguration(
        commandName: "sightline",
        abstract: "Video understanding on plain CPUs: decode, sample, analyse, publish.",
        version: "sightline \(version) (bus schema \(Envelope.schema))",
        subcommands: [ProbeCommand.self, DecodeCommand.self, RunCommand.self, ValidateCommand.self, NodesCommand.self, SubscribeCommand.self, KeysCommand.self, ServeCommand.self, SubmitCommand.self, WorkerCommand.self, ClusterCommand.self,
                      ModelsCommand.self, InferCommand.self, DetectCommand.self, RedactCommand.self, EmbedTextCommand.self, OCRCommand.self, SearchCommand.self, ExportCommand.self, ClipCommand.self, BenchCommand.self]
    )

    /// Parses, runs, and reports any error in one place: commands throw, and every error a
    /// user can act on prints as one line, `sightline: MESSAGE (HINT)` (`UserFacingError`).
    static func main() {
        AllocatorTuning.apply(environment: ProcessInfo.processInfo.environment)
        var command: ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exit(withError: error)  // usage errors, --help and --version: ArgumentParser's own output
        }
        warnAboutKernelSwitches()
        do {
            try command.run()
        } catch let error as UserFacingError {
            report(error)
            exit(withError: ExitCode(1))
        } catch {
            // ArgumentParser's own (exit codes, --help answered from run(), validation errors
            // with the usage line) and anything else: its formatting.
            exit(withError: error)
        }
    }

    static func report(_ error: Error) {
        switch error {
        case let diagnostics as Diagnostics:
            // file:line:column: error: … lines, each with its hint, then the count.
            FileHandle.standardError.write(Data((diagnostics.message + "\n").utf8))
        case let error as UserFacingError:
            printError(error.description)
        case let error as ValidationError:
            printError(error.message)
        default:
            printError("\(error)")
        }
    }

    /// A mistyped SIGHTLINE_ISA or pass name would otherwise switch nothing, silently.
    static func warnAboutKernelSwitches() {
        let config = KernelConfig.process
        for warning in config.warnings { printError("warning: \(warning)") }
        for (variable, names) in [("SIGHTLINE_DISABLE_PASSES", config.disabledPasses), ("SIGHTLINE_ENABLE_PASSES", config.enabledPasses)] {
            let unknown = PlannerPasses.unknown(in: names)
            if !unknown.isEmpty {
                printError("warning: \(variable) names no pass \(unknown.map { "'\($0)'" }.joined(separator: ", ")) "
                           + "(`sightline models passes` lists them)")
            }
        }
    }
}
