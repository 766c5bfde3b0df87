import SightlineCore
import SightlineGraph

/// `frame_stats`: mean luma and motion energy (mean absolute luma change against the
/// previous sampled frame of the same source, on a 64×36 thumbnail, scaled to 0…1).
public final class FrameStatsNode: NodeProcessor {
    private var previous: [String: LumaThumbnail] = [:]
    private let histogramBins: Int

    public static let descriptor = NodeDescriptor(
        name: "frame_stats",
        description: "Mean luma and motion energy per frame; publishes a `stats` record and annotates the frame (sl.frame_stats.*).",
        role: .transform, inputs: .frames, outputs: .any,
        options: [
            OptionSpec("histogram_bins", .int, default: .int(0), min: 0, max: 256,
                       help: "attach a luma histogram with this many bins as the record's vector (0: none)"),
        ],
        contract: NodeContract(produces: [.init(.stats)]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(FrameStatsNode(histogramBins: options.int("histogram_bins") ?? 0))
    }

    public init(histogramBins: Int = 0) {
        self.histogramBins = histogramBins
    }

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        switch item {
        case .frame(var frame):
            let thumbnail = LumaThumbnail(frame: frame, width: 64, height: 36)
            let meanLuma = Self.meanLuma(frame)
            var motion: Double? = nil
            if let last = previous[frame.sourceID], last.values.count == thumbnail.values.count {
                motion = Self.motionEnergy(last, thumbnail)
            }
            if let motion { frame.metadata["sl.frame_stats.motion"] = String(motion) }
            previous[frame.sourceID] = thumbnail
            frame.metadata["sl.frame_stats.mean_luma"] = String(meanLuma)
            let stats = FrameStatistics(frameIndex: frame.decodeIndex, width: frame.width, height: frame.height, meanLuma: meanLuma, motion: motion,
                                        histogram: histogramBins > 0 ? Self.histogram(thumbnail, bins: histogramBins) : nil)
            emit(.record(Record(.stats(stats), frame: frame, provenance: [Provenance(name: "frame_stats", version: "1")])))
            emit(.frame(frame))
        case .endOfStream(let eos):
            previous[eos.sourceID] = nil
        case .record, .status:
            emit(item)
        }
    }

    static func meanLuma(_ frame: Frame) -> Double {
        let bpp = frame.pixelFormat.bytesPerPixel
        let count = frame.width * frame.height
        guard count > 0, frame.pixels.count >= count * bpp else { return 0 }
        var total = 0
        frame.pixels.withUnsafeBufferPointer { px in
            if bpp == 1 {
                for i in 0..<count { total += Int(px[i]) }
            } else {
                let (r, g, b): (Int, Int, Int) = frame.pixelFormat == .bgr24 ? (2, 1, 0) : (0, 1, 2)
                for i in 0..<count {
                    let o = i * 3
                    total += (77 * Int(px[o + r]) + 150 * Int(px[o + g]) + 29 * Int(px[o + b])) >> 8
                }
            }
        }
        return Double(total) / Double(count)
    }

    /// Fraction of thumbnail pixels per luma bin; sums to 1.
    static func histogram(_ thumbnail: LumaThumbnail, bins: Int) -> [Float] {
        var counts = [Float](repeating: 0, count: bins)
        for v in thumbnail.values { counts[min(bins - 1, Int(v / 256 * Float(bins)))] += 1 }
        return counts.map { $0 / Float(max(thumbnail.values.count, 1)) }
    }

    /// Mean absolute difference of two thumbnails, 0 (identical) … 1 (black↔white everywhere).
    static func motionEnergy(_ a: LumaThumbnail, _ b: LumaThumbnail) -> Double {
        var sum: Float = 0
        for i in a.values.indices { sum += abs(a.values[i] - b.values[i]) }
        return Double(sum / Float(a.values.count) / 255)
    }
}
