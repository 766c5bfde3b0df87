/// The prepared weights a model's plans share. A plan is built per input shape — each batch
/// size of a dynamically batched node, each OCR line width — and every build folds and packs
/// the same weights again; kept apart, each plan held its own copy (open_nsfw: 95 MB a plan).
/// When a new plan's convolution has the same folded weights as one seen before (compared
/// element by element, so sharing never changes a result), it takes the banked arrays: the
/// folded weights and every prepared form of them, which depend on nothing else.
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
        guard var banked = convolutions[key], banked.geometry == conv.geometry, banked.groups == conv.groups,
              banked.outChannels == conv.outChannels, banked.weight == conv.weight, banked.bias == conv.bias else {
            convolutions[key] = conv
            return
        }
        conv.weight = banked.weight
        conv.bias = banked.bias
        // Each prepared form: take the banked copy, or bank this plan's if it is the first.
        func take(_ path: WritableKeyPath<ConvStep, [Float]?>) {
            guard let mine = conv[keyPath: path] else { return }
            if let theirs = banked[keyPath: path], theirs.count == mine.count { conv[keyPath: path] = theirs } else { banked[keyPath: path] = mine }
        }
        for form in ConvStep.preparedForms { take(form.path) }
        convolutions[key] = banked
    }
}
