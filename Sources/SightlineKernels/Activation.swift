import CSightlineKernels
import Foundation

/// Elementwise activations, applied in place. Fused into the producing kernel where possible.
public enum Activation: Sendable, Equatable {
    case none
    case relu
    case clip(min: Float, max: Float)
    case sigmoid
    case hardSigmoid(alpha: Float, beta: Float)
    case hardSwish
    /// GELU, exact (erf) form: x·½·(1 + erf(x/√2)) (`geluErf`).
    case geluErf

    /// y = f(x) for one value: the reference definition.
    @inline(__always)
    public func apply(_ x: Float) -> Float {
        switch self {
        case .none: x
        case .relu: max(x, 0)
        case .clip(let lo, let hi): min(max(x, lo), hi)
        case .sigmoid: 1 / (1 + exp(-x))
        case .hardSigmoid(let alpha, let beta): min(max(alpha * x + beta, 0), 1)
        case .hardSwish: x * min(max(x / 6 + 0.5, 0), 1)
        case .geluErf: 0.5 * x * (1 + erf(x * 0.70710678118654752))
        }
    }

    public func apply(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .none: return
        case .relu:
            for i in 0..<count { buffer[i] = max(buffer[i], 0) }
        case .clip(let lo, let hi):
            for i in 0..<count { buffer[i] = min(max(buffer[i], lo), hi) }
        // Written out so the loops vectorise (the per-element switch below does not).
        case .hardSwish:
            for i in 0..<count {
                let x = buffer[i]
                buffer[i] = x * min(max(x / 6 + 0.5, 0), 1)
            }
        case .hardSigmoid(let alpha, let beta):
            for i in 0..<count { buffer[i] = min(max(alpha * buffer[i] + beta, 0), 1) }
        case .sigmoid:
            // Branch-free exp (relative error ~2e-7), so the loop vectorises; libm's exp does not.
            for i in 0..<count { buffer[i] = 1 / (1 + fastExp(-buffer[i])) }
        case .geluErf:
            SightlineKernels.geluErf(buffer, count: count)
        }
    }
}

/// An activation as the C kernels apply it in registers: a code and the clip bounds.
public struct KernelActivation: Sendable {
    public var code: Int32
    public var lo: Float = 0, hi: Float = 0

    public static let none = KernelActivation(code: Int32(SL_ACT_NONE))
}

extension Activation {
    /// The C kernels' form of this activation; nil for those they do not fuse (sigmoid, hard
    /// sigmoid), which the caller applies over the output afterwards.
    public var kernelActivation: KernelActivation? {
        switch self {
        case .none: KernelActivation.none
        case .relu: KernelActivation(code: Int32(SL_ACT_RELU))
        case .clip(let lo, let hi): KernelActivation(code: Int32(SL_ACT_CLIP), lo: lo, hi: hi)
        case .hardSwish: KernelActivation(code: Int32(SL_ACT_HARDSWISH))
        case .geluErf: KernelActivation(code: Int32(SL_ACT_GELU_ERF))
        default: nil
        }
    }
}
