import SightlineCore
import SightlineGraph

/// `redact`: hides faces in the frames it passes on (so what follows — a sink that saves
/// frames, a model server — never sees them), from an upstream `faces` node's detections,
/// tracked between detections and extended back over a few held frames (`RedactionPlanner`).
public final class RedactNode: NodeProcessor {
    /// Frame metadata set on every frame a redact node passed on.
    public static let appliedKey = "sl.redact.applied"
    private let style: RedactionStyle
    private let margin: Double
    private let lookback: Int
    private let coast: Int
    private var planners: [String: RedactionPlanner<Frame>] = [:]
    private var faces: [String: FrameTable<[PixelBox]>] = [:]

    public static let descriptor = NodeDescriptor(
        name: "redact",
        description: "Hides faces in the frames passed on (pixelate, blur or fill), tracked between detections and back over held frames.",
        role: .transform, inputs: .any, outputs: .any,
        options: [
            OptionSpec("style", .choice(RedactionStyle.allCases.map(\.rawValue)), default: .string("pixelate"), help: "how a face is hidden"),
            OptionSpec("margin", .double, default: .double(0.25), min: 0, max: 2, help: "grow each face box by this share of its size on every side"),
            OptionSpec("lookback", .int, default: .int(2), min: 0, max: 100,
                       help: "frames held back so a face found late is hidden in the frames before too (adds this many frames of latency)"),
            OptionSpec("coast", .int, default: .int(3), min: 0, max: 1000, help: "frames a face stays hidden at its predicted place after the detector loses it"),
        ],
        contract: NodeContract(needs: [.init(anyOf: [.faces], hint: "add a faces node before it: redact hides what it detects")]))

    public static let factory = NodeFactory(descriptor: descriptor) { _, options in
        .processor(RedactNode(style: RedactionStyle(rawValue: options.string("style") ?? "pixelate") ?? .pixelate,
                              margin: options.double("margin") ?? 0.25, lookback: options.int("lookback") ?? 2, coast: options.int("coast") ?? 3))
    }

    init(style: RedactionStyle, margin: Double, lookback: Int, coast: Int) {
        self.style = style
        self.margin = margin
        self.lookback = lookback
        self.coast = coast
    }

    public func process(_ item: Item, context: any NodeContext, emit: (Item) -> Void) throws {
        switch item {
        case .record(let record):
            if case .faces(let detections) = record.value {
                faces[record.sourceID, default: FrameTable(capacity: 256)].set(detections.objects.map(\.box), for: detections.frameIndex)
            }
            emit(item)
        case .frame(let frame):
            var planner = planners[frame.sourceID] ?? RedactionPlanner(lookback: lookback, coast: coast)
            let detections = faces[frame.sourceID]?.take(frame.decodeIndex)
            for released in planner.push(frame, detections: detections, at: frame.seconds) { emit(.frame(redacted(released))) }
            planners[frame.sourceID] = planner
        case .endOfStream(let eos):
            if var planner = planners[eos.sourceID] {
                for released in planner.finish() { emit(.frame(redacted(released))) }
            }
            planners[eos.sourceID] = nil
            faces[eos.sourceID] = nil
        case .status:
            emit(item)
        }
    }

    private func redacted(_ released: RedactionPlanner<Frame>.Released) -> Frame {
        var frame = released.payload
        Redactor.apply(&frame, boxes: released.boxes, style: style, margin: margin)
        if !released.boxes.isEmpty { frame.metadata["sl.redact.faces"] = String(released.boxes.count) }
        // Passed a redact node, faces or not: an edge link may let such a frame of an
        // edge-only source cross (`PipelineSplit`).
        frame.metadata[Self.appliedKey] = style.rawValue
        return frame
    }
}
