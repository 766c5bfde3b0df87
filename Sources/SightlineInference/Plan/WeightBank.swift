/// The prepared weights a model's plans share. A plan is built per input shape — each batch
/// size of a dynamically batched node, each OCR line width — and every build folds and packs
/// the same weights again; kept apart, each plan held its own copy (open_nsfw: 95 MB a plan).
/// Each array of a new plan's convolution (the folded weights, the bias, every prepared form)
/// that equals, element by element, the banked one of the same step takes the banked storage.
struct WeightBank {
    private var convolutions: [String: ConvStep] = [:]
    private var panels: [String: [Float]] = [:]

    mutating func share(_ plan: inout ExecutionPlan) {
        for i in plan.steps.indices {
            let key = plan.steps[i].outputs.joined(separator: "|")
            switch plan.steps[i].kind {
            case .conv(var conv):
                share(&conv, key: key)
                plan.steps[i].kind = .conv(conv)
            case .expandDepthwise(var fused):
                share(&fused.expand, key: key + "#expand")
                share(&fused.depthwise, key: key + "#depthwise")
                if let banked = panels[key], banked == fused.expandPanels { fused.expandPanels = banked } else { panels[key] = fused.expandPanels }
                plan.steps[i].kind = .expandDepthwise(fused)
            default:
                break
            }
        }
    }

    private mutating func share(_ conv: inout ConvStep, key: String) {
        guard var banked = convolutions[key] else {
            convolutions[key] = conv
            return
        }
        // Each array: take the banked copy when it is equal element by element (so sharing
        // never changes a result), or bank this plan's if the bank has none of that form. Plans
        // need not hold the same forms: a delta plan keeps the folded weights a dense one drops.
        func take(_ path: WritableKeyPath<ConvStep, [Float]?>) {
            guard let mine = conv[keyPath: path] else { return }
            if let theirs = banked[keyPath: path] {
                if theirs == mine { conv[keyPath: path] = theirs }
            } else {
                banked[keyPath: path] = mine
            }
        }
        for path in [\ConvStep.foldedWeight, \ConvStep.bias] + ConvStep.preparedForms.map(\.path) { take(path) }
        convolutions[key] = banked
    }
}

extension ConvStep {
    /// `weight` as an optional array (nil once `drop-unread-weights` took it), for `WeightBank`.
    var foldedWeight: [Float]? {
        get { weight.isEmpty ? nil : weight }
        set { weight = newValue ?? [] }
    }
}
