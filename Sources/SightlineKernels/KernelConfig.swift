import CSightlineKernels
import Foundation

/// What the kernels may use, decided once per process: the instruction sets the CPU runs
/// (probed by cpu_features.c), capped by `SIGHTLINE_ISA`, and the planner passes switched off
/// with `SIGHTLINE_DISABLE_PASSES`. This is the only file that reads environment switches for
/// kernels and passes (ggml's cpu-feats habit: probe once, decide in one place).
///
/// - `SIGHTLINE_ISA=portable|avx2|avx512`: use at most this instruction set (A/B runs, and the
///   portable path on a machine that has more). It never goes above what the CPU runs.
/// - `SIGHTLINE_DISABLE_PASSES=winograd,fuse-expand-depthwise,…`: planner passes to skip, by
///   name (`sightline models passes` lists them).
/// - `SIGHTLINE_ENABLE_PASSES=activation-arena`: opt-in passes to run (off unless named here).
///
/// Tests run code under another configuration with `KernelConfig.with(_:_:)` (a task-local
/// override, so tests running in parallel do not see each other's).
public struct KernelConfig: Sendable, Equatable, CustomStringConvertible {
    public enum InstructionSet: Int, Sendable, Comparable, CaseIterable, CustomStringConvertible {
        /// Plain Swift kernels (any CPU).
        case portable
        /// AVX2 + FMA (x86-64 since Haswell / Zen).
        case avx2
        /// AVX-512 F + VL, on top of AVX2 (the 7×16 GEMM tiles, the fused expand → depthwise step).
        case avx512

        public static func < (a: InstructionSet, b: InstructionSet) -> Bool { a.rawValue < b.rawValue }

        public var description: String {
            switch self {
            case .portable: "portable"
            case .avx2: "avx2"
            case .avx512: "avx512"
            }
        }
    }

    /// The instruction set the kernels use.
    public var instructionSet: InstructionSet
    /// Planner passes not to run, by name.
    public var disabledPasses: Set<String>
    /// Opt-in planner passes to run, by name.
    public var enabledPasses: Set<String>
    /// Problems with the environment's switches (unknown values), reported once by the CLI.
    public var warnings: [String]

    public init(instructionSet: InstructionSet, disabledPasses: Set<String> = [], enabledPasses: Set<String> = [], warnings: [String] = []) {
        self.instructionSet = min(instructionSet, Self.detected)
        self.disabledPasses = disabledPasses
        self.enabledPasses = enabledPasses
        self.warnings = warnings
    }

    /// What this CPU runs.
    public static let detected: InstructionSet = sl_has_avx512() ? .avx512 : (sl_has_avx2_fma() ? .avx2 : .portable)

    /// The process's configuration: the CPU's, with the environment's switches applied.
    public static let process = KernelConfig(environment: ProcessInfo.processInfo.environment)

    @TaskLocal static var override: KernelConfig?

    /// The configuration in effect here: a test's override, else the process's.
    public static var current: KernelConfig { override ?? process }

    /// Runs `body` with `config` in effect (on this task: kernels that split work over threads
    /// choose their code before they split).
    public static func with<T>(_ config: KernelConfig, _ body: () throws -> T) rethrows -> T {
        try $override.withValue(config, operation: body)
    }

    public init(environment: [String: String]) {
        var warnings: [String] = []
        var isa = Self.detected
        if let requested = environment["SIGHTLINE_ISA"], !requested.isEmpty {
            if let level = InstructionSet.allCases.first(where: { $0.description == requested.lowercased() }) {
                isa = min(level, Self.detected)
            } else {
                warnings.append("SIGHTLINE_ISA='\(requested)' is not one of \(InstructionSet.allCases.map(\.description).joined(separator: ", ")); using \(isa)")
            }
        }
        func names(_ variable: String) -> Set<String> {
            Set((environment[variable] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        }
        self.init(instructionSet: isa, disabledPasses: names("SIGHTLINE_DISABLE_PASSES"), enabledPasses: names("SIGHTLINE_ENABLE_PASSES"),
                  warnings: warnings)
    }

    public var hasAVX2: Bool { instructionSet >= .avx2 }
    public var hasAVX512: Bool { instructionSet >= .avx512 }

    /// Whether the planner pass `name` runs: unless disabled, or for an opt-in pass (not
    /// `onByDefault`), only when enabled.
    public func runs(pass name: String, onByDefault: Bool = true) -> Bool {
        !disabledPasses.contains(name) && (onByDefault || enabledPasses.contains(name))
    }

    /// This configuration, using at most `level`.
    public func capped(at level: InstructionSet) -> KernelConfig {
        var config = self
        config.instructionSet = min(instructionSet, level)
        return config
    }

    public var description: String {
        "kernels: \(instructionSet) (CPU: \(Self.detected))" + (disabledPasses.isEmpty ? "" : ", passes off: \(disabledPasses.sorted().joined(separator: ", "))")
            + (enabledPasses.isEmpty ? "" : ", opt-in passes on: \(enabledPasses.sorted().joined(separator: ", "))")
    }
}
