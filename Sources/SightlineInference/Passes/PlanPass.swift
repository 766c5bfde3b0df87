import SightlineKernels

/// One rewrite of a specialised plan, in a file of its own (onnxruntime's optimizer habit: a
/// name, what it targets, an apply; one test per pass on a tiny graph). A pass that finds
/// nothing to do leaves the plan as it is, and every pass may be switched off: the plan stays
/// correct, only slower.
protocol PlanPass: Sendable {
    /// The name `SIGHTLINE_DISABLE_PASSES` and `sightline models passes` use.
    var name: String { get }
    /// One line: what it rewrites.
    var summary: String { get }
    /// False for an opt-in pass: it runs only when `SIGHTLINE_ENABLE_PASSES` names it.
    var onByDefault: Bool { get }
    func apply(to plan: inout ExecutionPlan) throws
}

extension PlanPass {
    var onByDefault: Bool { true }
}

/// The planner's passes, in the order they run.
enum PlanPasses {
    static let ordered: [any PlanPass] = [
        // Graph cleanup and layout.
        RemoveAliasesPass(),
        CancelTransposesPass(),
        RemoveAliasesPass(),  // the transposes that cancelled leave aliases behind
        FoldPadsPass(),
        ResizeAfterPointwisePass(),
        // Pattern fusion.
        FuseAttentionPass(),
        FuseLayerNormPass(),
        ConvStepsPass(),
        FoldConvAffinePass(),
        FoldConvTransposePass(),
        FuseConvActivationPass(),
        FuseHardSwishPass(),
        FusePostAffinePass(),
        FuseElementwiseReluPass(),
        FuseResidualAddPass(),  // after the Relu joined its Add
        FuseScaledResidualPass(),
        FuseUpsampleAddPass(),  // after fuse-residual-add, which joins an Add to its convolution
        RemoveDeadStepsPass(),
        // Weights prepared for the kernels, after every pass that changes weights.
        WinogradPass(),
        PackConvWeightsPass(),
        IndirectIm2colPass(),
        InterleaveDepthwisePass(),
        PackLinearPass(),
        FuseExpandDepthwisePass(),
        // Last: what no kernel reads goes, and (opt-in) the activations' block is planned.
        DropUnreadWeightsPass(),
        ActivationArenaPass(),
    ]

    /// Every pass name, once, in order.
    static var names: [String] {
        var seen = Set<String>()
        return ordered.map(\.name).filter { seen.insert($0).inserted }
    }

    /// Runs every pass `config` leaves on.
    static func run(on plan: inout ExecutionPlan, config: KernelConfig) throws {
        for pass in ordered where config.runs(pass: pass.name, onByDefault: pass.onByDefault) {
            try pass.apply(to: &plan)
        }
    }

    /// Names in `disabled` that are no pass (a typo would otherwise switch nothing off).
    static func unknown(in disabled: Set<String>) -> [String] {
        disabled.subtracting(names).sorted()
    }
}

/// The planner's passes as users see them (`sightline models passes`, the CLI's check of
/// `SIGHTLINE_DISABLE_PASSES`).
public enum PlannerPasses {
    public struct Info: Sendable, Equatable {
        public var name: String
        public var summary: String
        /// False: opt-in (`SIGHTLINE_ENABLE_PASSES`).
        public var onByDefault: Bool
    }

    /// Every pass, once, in the order they run.
    public static var all: [Info] {
        var seen = Set<String>()
        return PlanPasses.ordered.filter { seen.insert($0.name).inserted }.map { Info(name: $0.name, summary: $0.summary, onByDefault: $0.onByDefault) }
    }

    /// Names in `disabled` that are no pass.
    public static func unknown(in disabled: Set<String>) -> [String] { PlanPasses.unknown(in: disabled) }
}
