import CSightlineKernels
import Dispatch
import Foundation

/// Depthwise convolution on two AVX2 kernels. Planes whose eight-plane interleaved copy fits
/// in L2 take `sl_depthwise8_planes` (channels in the lanes: no lane wasted on a 7-wide row, no
/// column phases for stride 2); larger planes take `sl_depthwise_plane`, where each plane is
/// copied once into a zero-padded scratch split into column phases and every run of 32 outputs
/// accumulates all taps in registers. Measured on EfficientNet-Lite0's depthwise layers (one
/// thread): 5.6 ms (row-pass kernel) → 2.3 ms (plane kernel) → 1.6 ms (interleaved). The
/// portable `portableDepthwiseConv2d` stays for other geometries and CPUs without AVX2.
public enum VectorDepthwise {
    static func applies(_ g: Conv2DGeometry) -> Bool {
        g.dilationH == 1 && g.dilationW == 1 && g.strideH >= 1 && (g.strideW == 1 || g.strideW == 2)
            && KernelConfig.current.hasAVX2
    }

    /// Max pooling (dilation 1, stride 1 or 2 across) of every plane on `sl_maxpool_plane`.
    static func maxPool(input: UnsafePointer<Float>, planes: Int, height: Int, width: Int, geometry g: Conv2DGeometry,
                        output: UnsafeMutablePointer<Float>, threads: Int = 1) {
        let (oh, ow) = g.outputSize(height: height, width: width)
        let s = g.strideW
        let phaseWidth = (ow + 7) / 8 * 8 + (g.kernelW - 1) / s + 1
        let rows = max(height + g.padTop + g.padBottom, (oh - 1) * g.strideH + g.kernelH)
        let shared = SharedBuffers(input: input, weight: input, bias: nil, output: output)
        let parts = max(1, min(threads, planes))
        let work = { @Sendable (part: Int) in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: rows * s * phaseWidth)
            defer { scratch.deallocate() }
            scratch.initialize(repeating: -.infinity, count: rows * s * phaseWidth)
            for plane in (part * planes / parts)..<((part + 1) * planes / parts) {
                sl_depthwise_fill(shared.input + plane * height * width, height, width, g.padTop, g.padLeft, Int32(s), scratch, phaseWidth)
                sl_maxpool_plane(scratch, phaseWidth, Int32(s), g.strideH, Int32(g.kernelH), Int32(g.kernelW),
                                 shared.output + plane * oh * ow, oh, ow)
            }
        }
        if parts > 1 { KernelPool.shared.run(parts, work) } else { work(0) }
    }

    /// The interleaved scratch of `interleavedConv` for this geometry, (rows, columns) of 8
    /// floats, or nil where the eight-lane kernel does not apply: kernels wider than 8, and
    /// planes whose eight-plane scratch would not stay in L2 (PP-OCR det's 368² planes), which
    /// keep the plane kernel.
    static func interleavedScratch(height: Int, width: Int, geometry g: Conv2DGeometry) -> (rows: Int, columns: Int)? {
        guard g.kernelW <= 8 else { return nil }
        let (oh, ow) = g.outputSize(height: height, width: width)
        let rows = max(height + g.padTop + g.padBottom, (oh - 1) * g.strideH + g.kernelH)
        let columns = max(width + g.padLeft + g.padRight, ((ow + 7) / 8 * 8 - 1) * g.strideW + g.kernelW)
        return rows * columns * 8 * MemoryLayout<Float>.size <= 512 * 1024 ? (rows, columns) : nil
    }

    /// One plane at a time on `sl_depthwise_plane` (large planes, and kernels wider than 8).
    static func planeConv(
        input: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int,
        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, geometry g: Conv2DGeometry,
        activation: Activation, output: UnsafeMutablePointer<Float>, threads: Int
    ) {
        let (oh, ow) = g.outputSize(height: height, width: width)
        let s = g.strideW
        let phaseWidth = (ow + 7) / 8 * 8 + (g.kernelW - 1) / s + 1
        // Three output rows' worth of spare zero rows: the kernel computes narrow columns four
        // rows at a time.
        let rows = max(height + g.padTop + g.padBottom, (oh - 1) * g.strideH + g.kernelH) + 3 * g.strideH
        let planes = batch * channels
        let taps = g.kernelH * g.kernelW
        let fused = activation.kernelActivation
        let kernel = fused ?? .none  // nil: applied afterwards, over the output
        let shared = SharedBuffers(input: input, weight: weight, bias: bias, output: output)
        let parts = max(1, min(threads, planes))
        let work = { @Sendable (part: Int) in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: rows * s * phaseWidth)
            defer { scratch.deallocate() }
            scratch.initialize(repeating: 0, count: rows * s * phaseWidth)
            for plane in (part * planes / parts)..<((part + 1) * planes / parts) {
                let c = plane % channels
                let out = shared.output + plane * oh * ow
                sl_depthwise_fill(shared.input + plane * height * width, height, width, g.padTop, g.padLeft, Int32(s),
                                  scratch, phaseWidth)
                sl_depthwise_plane(scratch, phaseWidth, Int32(s), g.strideH, Int32(g.kernelH), Int32(g.kernelW), shared.weight + c * taps,
                                   shared.bias?[c] ?? 0, kernel.code, kernel.lo, kernel.hi, out, oh, ow)
                if fused == nil { activation.apply(out, count: oh * ow) }
            }
        }
        if parts > 1 { KernelPool.shared.run(parts, work) } else { work(0) }
    }

    /// Weights and biases as `interleavedConv` reads them: per group of eight channels, taps × 8
    /// weights (channel in the lane, zero past the last channel) then 8 biases. Built once per
    /// plan; rebuilding them on every call cost about 0.1 ms per EfficientNet-Lite0 run.
    public static func interleavedWeights(_ weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, channels: Int, taps: Int) -> [Float] {
        let groups = (channels + 7) / 8, stride = (taps + 1) * 8
        var out = [Float](repeating: 0, count: groups * stride)
        for c in 0..<channels {
            let base = (c / 8) * stride, lane = c % 8
            for t in 0..<taps { out[base + t * 8 + lane] = weight[c * taps + t] }
            out[base + taps * 8 + lane] = bias?[c] ?? 0
        }
        return out
    }

    /// Zeroes the pad cells of an interleaved scratch: its fill (or the fused expand) writes
    /// every image cell, and zeroing the whole 416 KB scratch of a 112² layer cost more than
    /// its pads.
    static func zeroPads(_ scratch: UnsafeMutablePointer<Float>, size: (rows: Int, columns: Int), geometry g: Conv2DGeometry,
                         height: Int, width: Int) {
        let row = size.columns * 8
        scratch.initialize(repeating: 0, count: g.padTop * row)
        let imageEnd = g.padTop + height
        (scratch + imageEnd * row).initialize(repeating: 0, count: (size.rows - imageEnd) * row)
        let right = g.padLeft + width
        for y in g.padTop..<imageEnd {
            (scratch + y * row).initialize(repeating: 0, count: g.padLeft * 8)
            (scratch + y * row + right * 8).initialize(repeating: 0, count: (size.columns - right) * 8)
        }
    }

    /// Eight channels at a time on `sl_depthwise8_planes` (channels in the vector lanes): one
    /// interleaved copy of eight planes per group, every tap a full vector at any plane size
    /// and stride. Groups are split over the threads. `interleaved` is `interleavedWeights` of
    /// these weights, or nil to build it here.
    static func interleavedConv(
        input: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int,
        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, geometry g: Conv2DGeometry,
        activation: Activation, output: UnsafeMutablePointer<Float>, threads: Int, scratch size: (rows: Int, columns: Int),
        interleaved: UnsafePointer<Float>? = nil
    ) {
        let taps = g.kernelH * g.kernelW
        guard let interleaved else {
            interleavedWeights(weight, bias: bias, channels: channels, taps: taps).withUnsafeBufferPointer {
                interleavedConv(input: input, batch: batch, channels: channels, height: height, width: width, weight: weight, bias: bias,
                                geometry: g, activation: activation, output: output, threads: threads, scratch: size,
                                interleaved: $0.baseAddress!)
            }
            return
        }
        let (oh, ow) = g.outputSize(height: height, width: width)
        let groupsPerImage = (channels + 7) / 8
        let groups = batch * groupsPerImage
        let fused = activation.kernelActivation
        let kernel = fused ?? .none  // nil: applied afterwards, over the output
        let shared = SharedBuffers(input: input, weight: interleaved, bias: nil, output: output)
        let parts = max(1, min(threads, groups))
        let work = { @Sendable (part: Int) in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: size.rows * size.columns * 8)
            defer { scratch.deallocate() }
            zeroPads(scratch, size: size, geometry: g, height: height, width: width)
            for group in (part * groups / parts)..<((part + 1) * groups / parts) {
                let image = group / groupsPerImage, first = (group % groupsPerImage) * 8
                let lanes = min(8, channels - first)
                let weight8 = shared.weight + (group % groupsPerImage) * (taps + 1) * 8, bias8 = weight8 + taps * 8
                let planeIn = shared.input + (image * channels + first) * height * width
                let planeOut = shared.output + (image * channels + first) * oh * ow
                sl_depthwise8_fill(planeIn, height * width, Int32(lanes), height, width, g.padTop, g.padLeft, scratch, size.columns)
                sl_depthwise8_planes(scratch, size.columns, Int32(g.strideW), g.strideH, Int32(g.kernelH), Int32(g.kernelW),
                                     weight8, bias8, kernel.code, kernel.lo, kernel.hi, planeOut, oh * ow, Int32(lanes), oh, ow)
                if fused == nil { activation.apply(planeOut, count: lanes * oh * ow) }
            }
        }
        if parts > 1 { KernelPool.shared.run(parts, work) } else { work(0) }
    }
}
