import Foundation
import SightlineCore
import SightlineKernels

/// Which positions of one image (H×W) changed since the cached run.
public struct ChangeMask: Sendable, Equatable {
    public var height: Int
    public var width: Int
    public var bits: [Bool]

    public init(height: Int, width: Int, bits: [Bool]) {
        precondition(bits.count == height * width)
        self.height = height
        self.width = width
        self.bits = bits
    }

    public var count: Int { bits.reduce(0) { $0 + ($1 ? 1 : 0) } }
    public var fraction: Double { bits.isEmpty ? 0 : Double(count) / Double(bits.count) }
}

/// The memory delta execution keeps per source: the effective input of the last run and
/// every intermediate value it produced (the plan's "release after last use" is not applied).
public final class DeltaState: @unchecked Sendable {
    var inputShape: [Int]?
    var values: [String: IRValue] = [:]
    /// Mean |value| of each convolution output at the last dense pass (the truncation scale).
    var scales: [String: Float] = [:]
    /// Whether the next frame runs masked, dense or plain.
    public internal(set) var schedule = DeltaSchedule()

    public init() {}

    /// Forget the cached activations (the schedule keeps its counts): nothing runs masked until
    /// a dense run refills the cache.
    public func reset() {
        inputShape = nil
        values = [:]
        scales = [:]
    }

    public var isEmpty: Bool { values.isEmpty }
}

/// What one delta run cost, in multiply-accumulates of the convolutions (where the time goes).
public struct DeltaStats: Sendable, Equatable {
    public var denseMACs: Double = 0
    public var computedMACs: Double = 0
    /// Fraction of input positions that changed (1 for a dense run).
    public var changedInput: Double = 1
    /// Convolutions that took the masked path.
    public var maskedConvolutions = 0
    /// How the frame ran (masked, dense refilling the cache, or plain).
    public var mode: DeltaSchedule.Mode = .dense
    public var savedFraction: Double { denseMACs > 0 ? 1 - computedMACs / denseMACs : 0 }
}

public enum InputLayout: Sendable {
    case nchw, nhwc
}

extension InferenceModel {
    /// How each value differs from the cached run.
    enum Change {
        case none
        case spatial(ChangeMask, InputLayout)
        case all
    }

    /// Runs the model recomputing only what `changed` input positions can reach (one image).
    /// Positions outside the mask keep the cached input — so with a mask that marks every
    /// position whose pixels moved at all, the result equals a dense run; with a coarser mask
    /// (noise ignored) the error is bounded by what was ignored. Convolutions whose changed
    /// outputs exceed `denseAbove` of the plane, a missing cache, a new shape or `changed == nil`
    /// run dense. Outputs are exactly those of `run`. With `truncation` τ > 0, each convolution's
    /// output positions whose values moved less than τ × the layer's mean magnitude keep their
    /// old values and stop the change from spreading (DeltaCNN's per-layer threshold; the error
    /// per layer stays below τ, and a dense layer can hand a sparse change on again).
    /// `state.schedule` picks the mode per frame: a moving camera, or masked runs that save less
    /// than `minSaving` of the work, run plain for a while (see `DeltaSchedule`).
    public func runDelta(_ input: Tensor, changed: ChangeMask?, layout: InputLayout, state: DeltaState,
                         denseAbove: Double = 0.3, truncation: Float = 0, minSaving: Double = 0.2) throws -> (outputs: [String: Tensor], stats: DeltaStats) {
        guard input.shape.first == 1, input.rank == 4 else { throw ModelError.unsupported("delta execution takes one image (batch 1, rank 4), got \(input.shape)") }
        let plan = try self.plan(for: input.shape, forDelta: true)
        var stats = DeltaStats()
        let spatial = layout == .nchw ? (input.shape[2], input.shape[3]) : (input.shape[1], input.shape[2])
        var changes: [String: Change] = [:]
        var effective = input
        let canReuse = state.inputShape == input.shape && state.values[inputName] != nil
        // A mask of another size cannot be applied: the frame counts as a refresh.
        let mask = changed.flatMap { $0.height == spatial.0 && $0.width == spatial.1 ? $0 : nil }
        stats.changedInput = mask?.fraction ?? 1
        let mode = state.schedule.next(changed: mask?.fraction, hasCache: canReuse, denseAbove: denseAbove)
        if mode == .plain {
            stats.mode = .plain
            state.reset()
            let outputs = try run(input)
            stats.denseMACs = plan.steps.flatMap(\.unfused).reduce(0) { total, step in
                guard let conv = step.conv, let x = plan.shapes[step.inputs[0]], x.count == 4 else { return total }
                return total + conv.macs(inputShape: x)
            }
            stats.computedMACs = stats.denseMACs
            return (outputs, stats)
        }
        var masked = false
        if mode == .masked, let mask, case .float(let previous)? = state.values[inputName] {
            // Positions outside the mask keep what the cache was computed from.
            masked = true
            effective = previous
            let channels = layout == .nchw ? input.shape[1] : input.shape[3]
            let plane = spatial.0 * spatial.1
            for p in 0..<plane where mask.bits[p] {
                for c in 0..<channels {
                    let i = layout == .nchw ? c * plane + p : p * channels + c
                    effective.data[i] = input.data[i]
                }
            }
            changes[inputName] = mask.count == 0 ? Change.none : .spatial(mask, layout)
        } else {
            // Dense: every layer runs on the new frame (exact). Cached values of the same shape
            // stay for truncation to compare against.
            if !canReuse {
                state.values = [:]
                state.scales = [:]
            }
            changes[inputName] = .all
        }
        // A masked frame whose cache turned out unusable ran dense.
        stats.mode = masked ? .masked : .dense
        state.inputShape = input.shape
        state.values[inputName] = .float(effective)

        // Convolutions one by one (a fused expand → depthwise step as its two): each keeps its
        // own cached output and change mask. The cache moves into the interpreter for the run
        // (so a cached output can be updated in place) and back after it.
        var interpreter = PlanInterpreter(plan: plan, threads: threads, values: state.values)
        state.values = [:]
        try interpreter.run(plan.steps.flatMap(\.unfused)) { interp, step in
            func input(_ name: String) throws -> Tensor {
                guard let value = interp.value(name) else { throw ModelError.missing(name) }
                return value.asFloat
            }
            let inputChanges: [Change] = step.inputs.map { name in
                if name.isEmpty || plan.constants[name] != nil { return .none }
                return changes[name] ?? .all
            }
            let cached = step.outputs.allSatisfy { interp.values[$0] != nil }
            if let conv = step.conv {
                let name = step.outputs[0]
                let x = try input(step.inputs[0])
                let (oh, ow) = conv.geometry.outputSize(height: x.shape[2], width: x.shape[3])
                let plane = oh * ow
                let macs = conv.macs(inputShape: x.shape)
                stats.denseMACs += macs
                if cached, case .none = inputChanges[0] {
                    changes[name] = Change.none
                    return true
                }
                var previous: Tensor? = cached ? interp.values[name]?.asFloat : nil
                var out: Tensor
                var recomputed: [Int32]? = nil  // nil: every position
                var dilated: ChangeMask? = nil
                if previous != nil, case .spatial(let mask, .nchw) = inputChanges[0] {
                    let (outMask, _, _) = dilateMask(mask.bits, height: mask.height, width: mask.width, geometry: conv.geometry)
                    let count = outMask.reduce(0) { $1 ? $0 + 1 : $0 }
                    if count == 0 {
                        changes[name] = Change.none
                        return true
                    }
                    if Double(count) <= denseAbove * Double(plane) {
                        let positions = outMask.indices.filter { outMask[$0] }.map(Int32.init)
                        if truncation == 0 {
                            // Update the cached output in place: with the cache's and `previous`'s
                            // references dropped, `out` owns its buffer (otherwise every masked
                            // layer copied its whole output first: 5% of a vtest run).
                            interp.values[name] = nil
                            out = previous.take()!
                        } else {
                            out = previous!  // truncation compares against the old values
                        }
                        conv.runMasked(x, positions: positions, into: &out)
                        stats.computedMACs += macs * Double(positions.count) / Double(plane)
                        stats.maskedConvolutions += 1
                        recomputed = positions
                        dilated = ChangeMask(height: oh, width: ow, bits: outMask)
                    } else {
                        out = conv.run(x, threads: interp.threads)
                        stats.computedMACs += macs
                    }
                } else {
                    out = conv.run(x, threads: interp.threads)
                    stats.computedMACs += macs
                }
                if truncation > 0, let previous, previous.shape == out.shape {
                    // DeltaCNN's truncation: a position whose new values all stay within τ of
                    // what downstream layers last saw keeps the old values and does not count
                    // as changed; the small difference waits until it grows past τ.
                    let tau = truncation * (state.scales[name] ?? 0)
                    let channels = out.shape[1]
                    var bits = [Bool](repeating: false, count: plane)
                    var changedCount = 0
                    out.data.withUnsafeMutableBufferPointer { o in
                        previous.data.withUnsafeBufferPointer { old in
                            // Channel-major passes (contiguous memory): the largest change per
                            // position, then put back the old values where it stayed below τ.
                            var largest = [Float](repeating: 0, count: plane)
                            let candidates = recomputed.map { $0.map(Int.init) }
                            for c in 0..<channels {
                                let a = o.baseAddress! + c * plane, b = old.baseAddress! + c * plane
                                if let candidates {
                                    for p in candidates { largest[p] = max(largest[p], abs(a[p] - b[p])) }
                                } else {
                                    for p in 0..<plane { largest[p] = max(largest[p], abs(a[p] - b[p])) }
                                }
                            }
                            let keep = (candidates ?? Array(0..<plane)).filter { largest[$0] < tau }
                            for p in (candidates ?? Array(0..<plane)) where largest[p] >= tau {
                                bits[p] = true
                                changedCount += 1
                            }
                            for c in 0..<channels {
                                let a = o.baseAddress! + c * plane, b = old.baseAddress! + c * plane
                                for p in keep { a[p] = b[p] }
                            }
                        }
                    }
                    interp.values[name] = .float(out)
                    changes[name] = changedCount == 0 ? Change.none : .spatial(ChangeMask(height: oh, width: ow, bits: bits), .nchw)
                    return true
                }
                if truncation > 0 && (previous == nil || state.scales[name] == nil) {
                    // A dense pass: remember each layer's typical magnitude for truncation.
                    state.scales[name] = out.data.reduce(0) { $0 + abs($1) } / Float(max(out.count, 1))
                }
                interp.values[name] = .float(out)
                if let dilated {
                    changes[name] = .spatial(dilated, .nchw)
                } else {
                    // Mostly (or wholly) changed: from here on the change counts as everywhere.
                    changes[name] = .all
                }
                return true
            }
            if cached, inputChanges.allSatisfy({ if case .none = $0 { true } else { false } }) {
                for name in step.outputs { changes[name] = Change.none }
                return true
            }
            // Everything but convolutions is cheap: computed densely (so exactly), with the
            // change mask carried through where the operator keeps positions apart.
            let outputs = try interp.execute(step)
            if case .generic(let node) = step.kind {
                changes[step.outputs[0]] = Self.propagate(node, inputChanges, outputShape: outputs.first.map(\.asFloat.shape) ?? [],
                                                          inputShape: interp.value(step.inputs[0])?.asFloat.shape)
                for name in step.outputs.dropFirst() { changes[name] = .all }
            } else {
                for name in step.outputs { changes[name] = .all }
            }
            return true
        }
        state.values = interpreter.values
        let result = try interpreter.outputs(named: graph.outputs)
        if masked { state.schedule.record(maskedSaving: stats.savedFraction, minSaving: minSaving) }
        return (result, stats)
    }

    /// The change of a dense-computed operator's output: elementwise operators keep the union
    /// of their inputs' masks, pooling windows dilate it like a convolution, the NHWC↔NCHW
    /// transposes move it to the other layout; anything else counts as changed everywhere.
    static func propagate(_ node: IRNode, _ inputs: [Change], outputShape: [Int], inputShape: [Int]?) -> Change {
        var masks: [(ChangeMask, InputLayout)] = []
        for change in inputs {
            switch change {
            case .none: continue
            case .all: return .all
            case .spatial(let m, let l): masks.append((m, l))
            }
        }
        guard let (first, layout) = masks.first, masks.allSatisfy({ $0.1 == layout && $0.0.height == first.height && $0.0.width == first.width }) else {
            return masks.isEmpty ? .none : .all
        }
        var union = first
        for (m, _) in masks.dropFirst() { for i in union.bits.indices where m.bits[i] { union.bits[i] = true } }
        let spatialOut = layout == .nchw ? outputShape.dropFirst(2).map { $0 } : Array(outputShape.dropFirst().prefix(2))
        if ExecutionPlan.unaryElementwise.contains(node.op) || ExecutionPlan.binaryElementwise.contains(node.op) {
            return outputShape.count == 4 && spatialOut == [first.height, first.width] ? .spatial(union, layout) : .all
        }
        if (node.op == "MaxPool" || node.op == "AveragePool"), layout == .nchw, let inputShape, let kernel = node.ints("kernel_shape"),
           let geometry = try? Operators.geometry(node, inputShape: inputShape, kernel: kernel) {
            let (bits, h, w) = dilateMask(union.bits, height: union.height, width: union.width, geometry: geometry)
            return outputShape.count == 4 && outputShape[2] == h && outputShape[3] == w ? .spatial(ChangeMask(height: h, width: w, bits: bits), .nchw) : .all
        }
        if node.op == "Transpose", let perm = node.ints("perm") {
            if perm == [0, 3, 1, 2], layout == .nhwc { return .spatial(union, .nchw) }
            if perm == [0, 2, 3, 1], layout == .nchw { return .spatial(union, .nhwc) }
        }
        return .all
    }
}

extension PlanStep {
    var conv: ConvStep? {
        if case .conv(let c) = kind { return c }
        return nil
    }
}

extension ConvStep {
    /// Multiply-accumulates of a dense run on one image of `inputShape` (NCHW).
    func macs(inputShape x: [Int]) -> Double {
        let (oh, ow) = geometry.outputSize(height: x[2], width: x[3])
        return Double(outChannels * oh * ow * (x[1] / groups) * geometry.kernelH * geometry.kernelW)
    }

    /// Recomputes the output at `positions` (oy·W'+ox) in place; one image.
    func runMasked(_ x: Tensor, positions: [Int32], into out: inout Tensor) {
        x.data.withUnsafeBufferPointer { src in
            weight.withUnsafeBufferPointer { w in
                out.data.withUnsafeMutableBufferPointer { dst in
                    let output = dst.baseAddress!
                    let depth = x.shape[1] * geometry.kernelH * geometry.kernelW
                    let packed = packedWeights?.count == PackedConv.packedCount(outChannels: outChannels, depth: depth) ? packedWeights : nil
                    withOptionalPointer(bias) { b in
                        withOptionalPointer(packed) { p in
                            maskedConv2d(input: src.baseAddress!, channels: x.shape[1], height: x.shape[2], width: x.shape[3],
                                         weight: w.baseAddress!, outChannels: outChannels, bias: b, groups: groups,
                                         geometry: geometry, activation: activation, positions: positions, output: output,
                                         packedWeight: p)
                        }
                    }
                    if let (scale, shift) = postAffine {
                        let spatial = out.shape[2] * out.shape[3]
                        for c in 0..<outChannels {
                            for p in positions { output[c * spatial + Int(p)] = output[c * spatial + Int(p)] * scale + shift }
                        }
                    }
                }
            }
        }
    }
}
