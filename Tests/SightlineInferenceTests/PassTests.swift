import Testing
import SightlineTestSupport
import SightlineCore
@testable import SightlineInference
@testable import SightlineKernels

/// One test per planner pass, each on a tiny graph built here: with the pass on, the plan has
/// its rewrite; switched off by name, it does not; and either way the plan computes what the
/// graph means (every pass off: the operators' reference semantics).
@Suite struct PassTests {
    static let everyPass = Set(PlanPasses.names)

    struct Built {
        let on: ExecutionPlan
        let off: ExecutionPlan
    }

    /// Plans `graph` with every pass, and with `pass` alone switched off; checks that both
    /// compute the graph's reference outputs on `input`.
    func build(_ graph: IRGraph, input: Tensor, pass: String, config: KernelConfig = .current,
               sourceLocation: SourceLocation = #_sourceLocation) throws -> Built {
        #expect(Self.everyPass.contains(pass), "'\(pass)' is a pass", sourceLocation: sourceLocation)
        let shapes = [graph.inputs[0].name: input.shape]
        // The opt-in passes on too, so every pass's test also runs through the activation arena.
        var config = config
        config.enabledPasses = Self.everyPass
        var without = config
        without.disabledPasses = [pass]
        var none = config
        none.disabledPasses = Self.everyPass
        let on = try ExecutionPlan.build(graph: graph, inputShapes: shapes, config: config)
        let off = try ExecutionPlan.build(graph: graph, inputShapes: shapes, config: without)
        let reference = try ExecutionPlan.build(graph: graph, inputShapes: shapes, config: none)
        let expected = try outputs(reference, graph, input, config: none)
        for (plan, label) in [(on, "on"), (off, "off")] {
            let actual = try outputs(plan, graph, input, config: label == "on" ? config : without)
            for name in graph.outputs {
                let a = try #require(actual[name]), e = try #require(expected[name])
                #expect(a.shape == e.shape, "\(pass) \(label): \(name) shape", sourceLocation: sourceLocation)
                #expect(normalizedMSE(a.data, e.data) < 1e-9, "\(pass) \(label): \(name) differs from the reference", sourceLocation: sourceLocation)
            }
        }
        return Built(on: on, off: off)
    }

    private func outputs(_ plan: ExecutionPlan, _ graph: IRGraph, _ input: Tensor, config: KernelConfig) throws -> [String: Tensor] {
        try KernelConfig.with(config) {
            // Through the activation arena when the plan has one, its block full of NaN first:
            // a pooled step that left an element unwritten shows in every pass's test.
            let block = ActivationBlock(capacity: plan.activations.blockElements)
            block.poison()
            var interpreter = PlanInterpreter(plan: plan, threads: 1, values: [graph.inputs[0].name: .float(input)], block: block)
            try interpreter.run(plan.steps, releases: plan.releases)
            return try interpreter.outputs(named: graph.outputs)
        }
    }

    private func ops(_ plan: ExecutionPlan) -> [String] { plan.steps.map(\.op) }

    private func convs(_ plan: ExecutionPlan) -> [ConvStep] { plan.steps.compactMap(\.conv) }

    private func graph(_ nodes: [IRNode], _ constants: [String: IRValue] = [:], input: [Int], outputs: [String] = ["y"]) -> IRGraph {
        IRGraph(nodes: nodes, constants: constants, inputs: [.init(name: "x", dims: input.map { $0 })], outputs: outputs, metadata: [:], opset: 13)
    }

    private func node(_ op: String, _ inputs: [String], _ output: String, _ attributes: [String: IRAttribute] = [:]) -> IRNode {
        IRNode(op: op, name: output, inputs: inputs, outputs: [output], attributes: attributes)
    }

    private func tensor(_ shape: [Int], seed: UInt64) -> IRValue { .float(Tensor(shape: shape, data: random(shape.reduce(1, *), seed: seed))) }

    private func scalar(_ v: Float) -> IRValue { .float(Tensor(shape: [], data: [v])) }

    private func input(_ shape: [Int], seed: UInt64 = 1) -> Tensor { Tensor(shape: shape, data: random(shape.reduce(1, *), seed: seed)) }

    static let hasAVX2 = KernelConfig.process.hasAVX2
    static let needsAVX2: Comment = "needs AVX2 and FMA: this CPU lacks them, or SIGHTLINE_ISA leaves them out"

    // MARK: - Graph cleanup and layout

    @Test func removeAliases() throws {
        let g = graph([node("Identity", ["x"], "i"), node("Relu", ["i"], "y")], input: [2, 3])
        let b = try build(g, input: input([2, 3]), pass: "remove-aliases")
        #expect(ops(b.on) == ["Relu"])
        #expect(ops(b.off) == ["Identity", "Relu"])
    }

    @Test func cancelTransposes() throws {
        let g = graph([node("Transpose", ["x"], "t", ["perm": .ints([0, 2, 3, 1])]), node("Relu", ["t"], "r"),
                       node("Transpose", ["r"], "y", ["perm": .ints([0, 3, 1, 2])])], input: [1, 3, 4, 5])
        let b = try build(g, input: input([1, 3, 4, 5]), pass: "cancel-transposes")
        #expect(ops(b.on) == ["Relu"])
        #expect(ops(b.off).filter { $0 == "Transpose" }.count == 2)
    }

    @Test func cancelTransposesThroughPads() throws {
        // TFLite's NHWC Pad between two convolutions (spatial, and channels for a residual Add).
        let g = graph([node("Transpose", ["x"], "t", ["perm": .ints([0, 2, 3, 1])]),
                       node("Pad", ["t"], "p", ["pads": .ints([0, 1, 0, 0, 0, 2, 1, 3]), "mode": .string("constant")]),
                       node("Pad", ["p", "pads"], "q"),
                       node("Transpose", ["q"], "y", ["perm": .ints([0, 3, 1, 2])])],
                      ["pads": .int64(shape: [8], data: [0, 0, 0, 0, 0, 0, 0, 2])], input: [1, 3, 4, 5])
        let b = try build(g, input: input([1, 3, 4, 5]), pass: "cancel-transposes")
        #expect(ops(b.on) == ["Pad", "Pad"])
        #expect(ops(b.off).filter { $0 == "Transpose" }.count == 2)
    }

    @Test func foldPads() throws {
        let g = graph([node("Pad", ["x", "pads"], "p"), node("Conv", ["p", "w"], "y")],
                      ["pads": .int64(shape: [8], data: [0, 0, 1, 1, 0, 0, 1, 1]), "w": tensor([4, 3, 3, 3], seed: 2)], input: [1, 3, 6, 6])
        let b = try build(g, input: input([1, 3, 6, 6]), pass: "fold-pads")
        #expect(ops(b.on) == ["Conv"])
        #expect(convs(b.on).first.map { [$0.geometry.padTop, $0.geometry.padLeft] } == [1, 1])
        #expect(ops(b.off) == ["Pad", "Conv"])
    }

    @Test func resizeAfterPointwise() throws {
        // A 2× bilinear upsample of 6 channels read by a 1×1 convolution to 2 channels, with bias.
        let g = graph([node("Resize", ["x", "", "", "sizes"], "up", ["mode": .string("linear"), "coordinate_transformation_mode": .string("half_pixel")]),
                       node("Conv", ["up", "w", "b"], "y", ["kernel_shape": .ints([1, 1])])],
                      ["sizes": .int64(shape: [4], data: [1, 6, 8, 10]), "w": tensor([2, 6, 1, 1], seed: 3), "b": tensor([2], seed: 4)],
                      input: [1, 6, 4, 5])
        let b = try build(g, input: input([1, 6, 4, 5]), pass: "resize-after-pointwise")
        #expect(ops(b.on) == ["Conv", "Resize"])
        #expect(b.on.shapes[b.on.steps[0].outputs[0]] == [1, 2, 4, 5])
        #expect(ops(b.off) == ["Resize", "Conv"])
    }

    // MARK: - Pattern fusion

    @Test func fuseAttention() throws {
        // Keys and values computed from the input (constant ones would fold away).
        let g = graph([node("Sigmoid", ["x"], "k"), node("Relu", ["x"], "v"), node("Transpose", ["k"], "kt", ["perm": .ints([0, 2, 1])]),
                       node("MatMul", ["x", "kt"], "s"), node("Mul", ["s", "scale"], "ss"), node("Softmax", ["ss"], "p", ["axis": .int(-1)]),
                       node("MatMul", ["p", "v"], "y")],
                      ["scale": scalar(0.5)], input: [1, 5, 4])
        let b = try build(g, input: input([1, 5, 4]), pass: "fuse-attention")
        #expect(ops(b.on) == ["Sigmoid", "Relu", "Attention(fused)"])
        #expect(ops(b.off).contains("Softmax"))
    }

    @Test func fuseLayerNorm() throws {
        let g = graph([node("ReduceMean", ["x"], "m", ["axes": .ints([-1])]), node("Sub", ["x", "m"], "c"), node("Pow", ["c", "two"], "sq"),
                       node("ReduceMean", ["sq"], "v", ["axes": .ints([-1])]), node("Add", ["v", "eps"], "ve"), node("Sqrt", ["ve"], "sd"),
                       node("Div", ["c", "sd"], "n"), node("Mul", ["n", "gamma"], "ng"), node("Add", ["ng", "beta"], "y")],
                      ["two": scalar(2), "eps": scalar(1e-5), "gamma": tensor([6], seed: 5), "beta": tensor([6], seed: 6)], input: [3, 6])
        let b = try build(g, input: input([3, 6]), pass: "fuse-layer-norm")
        #expect(ops(b.on) == ["LayerNorm(fused)"])
        #expect(ops(b.off).count == 9)
    }

    @Test func convSteps() throws {
        let g = graph([node("Conv", ["x", "w", "b"], "y")], ["w": tensor([4, 3, 1, 1], seed: 7), "b": tensor([4], seed: 8)], input: [1, 3, 5, 5])
        let b = try build(g, input: input([1, 3, 5, 5]), pass: "conv-steps")
        #expect(ops(b.on) == ["Conv"] && convs(b.on).count == 1)
        #expect(convs(b.off).isEmpty, "the Conv stays a generic operator")
    }

    @Test func foldConvAffine() throws {
        let g = graph([node("Conv", ["x", "w"], "c"), node("BatchNormalization", ["c", "s", "sh", "mean", "var"], "bn"),
                       node("Mul", ["bn", "k"], "y")],
                      ["w": tensor([4, 3, 3, 3], seed: 9), "s": tensor([4], seed: 10), "sh": tensor([4], seed: 11), "mean": tensor([4], seed: 12),
                       "var": .float(Tensor(shape: [4], data: [0.5, 1, 1.5, 2])), "k": .float(Tensor(shape: [1, 4, 1, 1], data: [1, 2, 3, 4]))],
                      input: [1, 3, 6, 6])
        let b = try build(g, input: input([1, 3, 6, 6]), pass: "fold-conv-affine")
        #expect(ops(b.on) == ["Conv"])
        #expect(ops(b.off) == ["Conv", "BatchNormalization", "Mul"])
    }

    /// A DB head: ConvTranspose → BatchNormalization → Relu → ConvTranspose → Sigmoid becomes the
    /// two ConvTransposes (the tiling 2×2 stride-2 path); a Sub from a constant and an
    /// overlapping 3×3 stride-2 kernel (the scatter-add path) fold too.
    @Test func foldConvTranspose() throws {
        let head = graph([node("ConvTranspose", ["x", "w1", "b1"], "t1", ["strides": .ints([2, 2])]),
                          node("BatchNormalization", ["t1", "s", "sh", "mean", "var"], "bn"), node("Relu", ["bn"], "r"),
                          node("ConvTranspose", ["r", "w2"], "t2", ["strides": .ints([2, 2])]), node("Sigmoid", ["t2"], "y")],
                         ["w1": tensor([6, 4, 2, 2], seed: 30), "b1": tensor([4], seed: 31), "s": tensor([4], seed: 32), "sh": tensor([4], seed: 33),
                          "mean": tensor([4], seed: 34), "var": .float(Tensor(shape: [4], data: [0.5, 1, 1.5, 2])), "w2": tensor([4, 1, 2, 2], seed: 35)],
                         input: [1, 6, 5, 7])
        let b = try build(head, input: input([1, 6, 5, 7]), pass: "fold-conv-transpose")
        #expect(ops(b.on) == ["ConvTranspose", "ConvTranspose"])
        #expect(ops(b.off) == ["ConvTranspose", "BatchNormalization", "Relu", "ConvTranspose", "Sigmoid"])
        let overlapping = graph([node("ConvTranspose", ["x", "w"], "t", ["strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])]),
                                 node("Sub", ["k", "t"], "s"), node("Relu", ["s"], "y")],
                                ["w": tensor([3, 5, 3, 3], seed: 36), "k": .float(Tensor(shape: [1, 5, 1, 1], data: [0.5, -1, 0, 2, 1]))],
                                input: [2, 3, 4, 4])
        let o = try build(overlapping, input: input([2, 3, 4, 4]), pass: "fold-conv-transpose")
        #expect(ops(o.on) == ["ConvTranspose"])
        #expect(ops(o.off) == ["ConvTranspose", "Sub"], "fuse-elementwise-relu joins the Relu to the Sub")
    }

    /// A feature pyramid's top-down join, lateral + nearest 2× upsample (the vector path, a width
    /// of 20), and a 3× half-pixel upsample added the other way round with a Relu after (the
    /// table path); the Add reads the small map, and the Resize is gone.
    @Test func fuseUpsampleAdd() throws {
        for (scale, transform, nearest, upFirst) in [(Float(2), "asymmetric", "floor", false), (3, "half_pixel", "round_prefer_floor", true)] {
            let h = 4, w = 10, big = [1, 3, h * Int(scale), w * Int(scale)]
            let resize = IRNode(op: "Resize", name: "up", inputs: ["small", "roi", "scales"], outputs: ["up"],
                                attributes: ["mode": .string("nearest"), "coordinate_transformation_mode": .string(transform), "nearest_mode": .string(nearest)])
            let g = graph([node("AveragePool", ["x"], "small", ["kernel_shape": .ints([Int64(scale), Int64(scale)]), "strides": .ints([Int64(scale), Int64(scale)])]),
                           resize, node("Add", upFirst ? ["up", "x"] : ["x", "up"], "sum"), node("Relu", ["sum"], "y")],
                          ["roi": .float(Tensor(shape: [0], data: [])), "scales": .float(Tensor(shape: [4], data: [1, 1, scale, scale]))], input: big)
            let b = try build(g, input: input(big), pass: "fuse-upsample-add")
            #expect(ops(b.on) == ["AveragePool", "Add"], "\(scale)×")
            #expect(b.on.steps.last?.inputs == ["x", "small"])
            #expect(ops(b.off) == ["AveragePool", "Resize", "Add"], "fuse-elementwise-relu joins the Relu to the Add")
        }
    }

    /// Residual squeeze-and-excitation: x + x·s with s from a global pool, in either operand
    /// order, becomes one step.
    @Test func fuseScaledResidual() throws {
        for (mulOrder, addOrder) in [(["x", "s"], ["x", "m"]), (["s", "x"], ["m", "x"])] {
            let g = graph([node("GlobalAveragePool", ["x"], "s"), node("Mul", mulOrder, "m"), node("Add", addOrder, "y")], input: [2, 4, 5, 7])
            let b = try build(g, input: input([2, 4, 5, 7]), pass: "fuse-scaled-residual")
            #expect(ops(b.on) == ["GlobalAveragePool", "Mul"])
            #expect(ops(b.off) == ["GlobalAveragePool", "Mul", "Add"])
        }
    }

    @Test func fuseConvActivation() throws {
        let g = graph([node("Conv", ["x", "w"], "c"), node("Clip", ["c", "lo", "hi"], "y")],
                      ["w": tensor([4, 3, 3, 3], seed: 13), "lo": scalar(0), "hi": scalar(0.5)], input: [1, 3, 6, 6])
        let b = try build(g, input: input([1, 3, 6, 6]), pass: "fuse-conv-activation")
        #expect(ops(b.on) == ["Conv"] && convs(b.on).first?.activation == .clip(min: 0, max: 0.5))
        #expect(ops(b.off) == ["Conv", "Clip"])
    }

    @Test func fuseHardSwish() throws {
        let g = graph([node("Conv", ["x", "w"], "c"), node("Add", ["c", "three"], "a"), node("Clip", ["a", "zero", "six"], "cl"),
                       node("Mul", ["c", "cl"], "m"), node("Div", ["m", "six"], "y")],
                      ["w": tensor([4, 3, 1, 1], seed: 14), "three": scalar(3), "zero": scalar(0), "six": scalar(6)], input: [1, 3, 4, 4])
        let b = try build(g, input: input([1, 3, 4, 4]), pass: "fuse-hard-swish")
        #expect(ops(b.on) == ["Conv"] && convs(b.on).first?.activation == .hardSwish)
        #expect(ops(b.off).count == 5)
    }

    @Test func fusePostAffine() throws {
        let g = graph([node("Conv", ["x", "w"], "c"), node("Relu", ["c"], "r"), node("Mul", ["r", "k"], "m"), node("Add", ["m", "d"], "y")],
                      ["w": tensor([4, 3, 1, 1], seed: 15), "k": scalar(2), "d": scalar(-0.5)], input: [1, 3, 4, 4])
        let b = try build(g, input: input([1, 3, 4, 4]), pass: "fuse-post-affine")
        #expect(ops(b.on) == ["Conv"] && convs(b.on).first.map { $0.postAffine.map { [$0.scale, $0.shift] } } == [2, -0.5])
        #expect(ops(b.off) == ["Conv", "Mul", "Add"])
    }

    @Test func fuseElementwiseRelu() throws {
        let g = graph([node("Relu", ["x"], "a"), node("Sigmoid", ["x"], "b"), node("Add", ["a", "b"], "s"), node("Relu", ["s"], "y")], input: [2, 8])
        let b = try build(g, input: input([2, 8]), pass: "fuse-elementwise-relu")
        #expect(ops(b.on) == ["Relu", "Sigmoid", "Add"])
        #expect(ops(b.off) == ["Relu", "Sigmoid", "Add", "Relu"])
    }

    /// A fused residual join whose other operand is missing or of the wrong size is an error on
    /// both entry points (tensors, and pointers as the activation arena passes them), never a
    /// join quietly skipped.
    @Test func aWrongSizedResidualIsAnError() throws {
        let g = graph([node("Conv", ["x", "wp"], "p"), node("Add", ["p", "x"], "y")], ["wp": tensor([8, 8, 1, 1], seed: 31)],
                      input: [1, 8, 6, 6])
        let plan = try ExecutionPlan.build(graph: g, inputShapes: ["x": [1, 8, 6, 6]])
        let step = try #require(plan.steps.first { $0.conv?.residual != nil }, "\(ops(plan))")
        let x = input([1, 8, 6, 6]), small = input([1, 8, 5, 5])
        #expect(throws: ModelError.self) { try step.run([.float(x), .float(small)], threads: 1) }
        #expect(throws: ModelError.self) { try step.run([.float(x), nil], threads: 1) }
        #expect(try step.run([.float(x), .float(x)], threads: 1).first?.shape == [1, 8, 6, 6])
        var out = [Float](repeating: 0, count: x.data.count)
        x.data.withUnsafeBufferPointer { xp in
            small.data.withUnsafeBufferPointer { sp in
                out.withUnsafeMutableBufferPointer { op in
                    #expect(throws: ModelError.self) {
                        try step.run(views: [(xp.baseAddress!, x.shape), (sp.baseAddress!, small.shape)], into: op.baseAddress!, threads: 1)
                    }
                    #expect(throws: ModelError.self) { try step.run(views: [(xp.baseAddress!, x.shape), nil], into: op.baseAddress!, threads: 1) }
                }
            }
        }
    }

    @Test func fuseResidualAdd() throws {
        // A BlazeFace block: depthwise 3×3, pointwise 1×1, + the block's input, Relu; then a
        // second 1×1 whose Add reads it first (operand order) without a Relu, and a third
        // whose Add's other operand is made after it (it must stay a separate step).
        let g = graph([node("Conv", ["x", "wd"], "d", ["group": .int(8), "pads": .ints([1, 1, 1, 1])]),
                       node("Conv", ["d", "wp", "bp"], "p"), node("Add", ["p", "x"], "s"), node("Relu", ["s"], "a"),
                       node("Conv", ["a", "wq"], "q"), node("Add", ["a", "q"], "t"),
                       node("Conv", ["t", "wr"], "r"), node("Sigmoid", ["t"], "late"), node("Add", ["r", "late"], "y")],
                      ["wd": tensor([8, 1, 3, 3], seed: 30), "wp": tensor([8, 8, 1, 1], seed: 31), "bp": tensor([8], seed: 32),
                       "wq": tensor([8, 8, 1, 1], seed: 33), "wr": tensor([8, 8, 1, 1], seed: 34)], input: [1, 8, 12, 12])
        let x = input([1, 8, 12, 12])
        let b = try build(g, input: x, pass: "fuse-residual-add")
        #expect(ops(b.on).filter { $0 == "Conv+Add(fused)" }.count == 2, "\(ops(b.on))")
        #expect(ops(b.on).filter { $0 == "Add" }.count == 1, "the Add whose operand comes later stays: \(ops(b.on))")
        #expect(convs(b.on).compactMap(\.residual).map(\.activation) == [.relu, .none])
        #expect(ops(b.off).filter { $0 == "Add" }.count == 3)
        // The same float operations in the same order: the same bits, not merely close.
        let on = try KernelConfig.with(.current) { () -> Tensor in
            var interpreter = PlanInterpreter(plan: b.on, threads: 1, values: ["x": .float(x)])
            try interpreter.run(b.on.steps, releases: b.on.releases)
            return try #require(try interpreter.outputs(named: ["y"])["y"])
        }
        let off = try KernelConfig.with(.current) { () -> Tensor in
            var interpreter = PlanInterpreter(plan: b.off, threads: 1, values: ["x": .float(x)])
            try interpreter.run(b.off.steps, releases: b.off.releases)
            return try #require(try interpreter.outputs(named: ["y"])["y"])
        }
        let same = on.data == off.data
        #expect(same, "fused and unfused differ")
        // Unfused (as delta execution runs it), each fused step is its convolution and its Add.
        let unfused = b.on.steps.flatMap(\.unfused)
        #expect(unfused.map(\.op) == b.off.steps.flatMap(\.unfused).map(\.op))
        var interpreter = PlanInterpreter(plan: b.on, threads: 1, values: ["x": .float(x)])
        try interpreter.run(unfused)
        let unfusedSame = try #require(try interpreter.outputs(named: ["y"])["y"]).data == off.data
        #expect(unfusedSame, "unfused differs")
    }

    @Test func removeDeadSteps() throws {
        let g = graph([node("Relu", ["x"], "y"), node("Sigmoid", ["x"], "unused")], input: [2, 3])
        let b = try build(g, input: input([2, 3]), pass: "remove-dead-steps")
        #expect(ops(b.on) == ["Relu"])
        #expect(ops(b.off) == ["Relu", "Sigmoid"])
    }

    // MARK: - Kernel weights

    @Test func winograd() throws {
        let g = graph([node("Conv", ["x", "w"], "y", ["pads": .ints([1, 1, 1, 1])])], ["w": tensor([8, 8, 3, 3], seed: 16)], input: [1, 8, 6, 6])
        let b = try build(g, input: input([1, 8, 6, 6]), pass: "winograd")
        let on = try #require(convs(b.on).first)
        #expect(on.kernelWeights(channels: 8) == .winograd)
        #expect((on.winogradWeights == nil) != (on.winogradPacked == nil), "one copy of the transformed weights, packed where the kernel takes it")
        #expect(convs(b.off).first?.kernelWeights(channels: 8) != .winograd)
    }

    /// Planes of 20 × 20 and more take F(4×4, 3×3) on the packed path, smaller ones F(2×2, 3×3);
    /// `build` checks both plans against the reference.
    @Test(.enabled(if: hasAVX2, needsAVX2))
    func winogradTileFollowsThePlaneSize() throws {
        for (side, tile) in [(24, Winograd.Tile.four), (21, .four), (12, .two)] {
            let g = graph([node("Conv", ["x", "w"], "y", ["pads": .ints([1, 1, 1, 1])])], ["w": tensor([16, 8, 3, 3], seed: 16)],
                          input: [1, 8, side, side])
            let b = try build(g, input: input([1, 8, side, side]), pass: "winograd")
            let on = try #require(convs(b.on).first)
            #expect(on.kernelWeights(channels: 8) == .winograd)
            #expect(on.winogradTile == tile, "\(side)²")
            #expect(on.winogradPacked?.count == tile.taps * PackedConv.packedCount(outChannels: 16, depth: 8))
        }
    }

    /// A dense run reads only the prepared copy; the folded originals stay where the kernel
    /// reads them (a depthwise convolution) or the pass is off.
    @Test func dropUnreadWeights() throws {
        let g = graph([node("Conv", ["x", "w1"], "a", ["pads": .ints([1, 1, 1, 1])]),
                       node("Conv", ["a", "w2"], "y", ["group": .int(8), "pads": .ints([1, 1, 1, 1])])],
                      ["w1": tensor([8, 8, 3, 3], seed: 16), "w2": tensor([8, 1, 3, 3], seed: 23)], input: [1, 8, 6, 6])
        let b = try build(g, input: input([1, 8, 6, 6]), pass: "drop-unread-weights")
        let on = convs(b.on), off = convs(b.off)
        #expect(on.count == 2 && off.count == 2)
        #expect(on.first?.weight.isEmpty == true, "the 3×3 convolution reads its Winograd copy")
        #expect(on.last?.weight.count == 8 * 9, "the depthwise kernel reads the folded weights")
        #expect(off.first?.weight.count == 8 * 8 * 9)
    }

    @Test(.enabled(if: hasAVX2, needsAVX2))
    func packConvWeightsAndIndirectIm2col() throws {
        let g = graph([node("Conv", ["x", "w"], "y", ["strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])])],
                      ["w": tensor([7, 3, 3, 3], seed: 17)], input: [1, 3, 9, 9])
        let packed = try build(g, input: input([1, 3, 9, 9]), pass: "pack-conv-weights")
        #expect(convs(packed.on).first?.packedWeights != nil && convs(packed.on).first?.indirect == true)
        #expect(convs(packed.off).first?.packedWeights == nil && convs(packed.off).first?.indirect == false, "OpenBLAS im2col")
        let indirect = try build(g, input: input([1, 3, 9, 9]), pass: "indirect-im2col")
        #expect(convs(indirect.off).first?.packedWeights != nil && convs(indirect.off).first?.indirect == false, "packed, on im2col")
    }

    @Test(.enabled(if: hasAVX2, needsAVX2))
    func interleaveDepthwise() throws {
        let g = graph([node("Conv", ["x", "w"], "y", ["group": .int(16), "pads": .ints([1, 1, 1, 1])])], ["w": tensor([16, 1, 3, 3], seed: 18)],
                      input: [1, 16, 10, 10])
        let b = try build(g, input: input([1, 16, 10, 10]), pass: "interleave-depthwise")
        #expect(convs(b.on).first?.depthwiseInterleaved != nil && convs(b.on).first?.depthwiseKernel == .best)
        #expect(convs(b.off).first?.depthwiseInterleaved == nil && convs(b.off).first?.depthwiseKernel == .planes)
    }

    @Test(.enabled(if: hasAVX2, needsAVX2))
    func packLinear() throws {
        let g = graph([node("Gemm", ["x", "w", "b"], "y", ["transB": .int(1)])], ["w": tensor([20, 12], seed: 19), "b": tensor([20], seed: 20)],
                      input: [3, 12])
        let b = try build(g, input: input([3, 12]), pass: "pack-linear")
        #expect(ops(b.on) == ["Gemm(packed)"])
        #expect(ops(b.off) == ["Gemm"])
    }

    @Test(.enabled(if: hasAVX2, needsAVX2))
    func fuseExpandDepthwise() throws {
        let g = graph([node("Conv", ["x", "we"], "e"), node("Relu", ["e"], "a"),
                       node("Conv", ["a", "wd"], "y", ["group": .int(16), "pads": .ints([1, 1, 1, 1])])],
                      ["we": tensor([16, 8, 1, 1], seed: 21), "wd": tensor([16, 1, 3, 3], seed: 22)], input: [1, 8, 7, 7])
        let b = try build(g, input: input([1, 8, 7, 7]), pass: "fuse-expand-depthwise")
        #expect(ops(b.on) == ["Conv+DepthwiseConv(fused)"])
        #expect(ops(b.off) == ["Conv", "Conv"])
    }

    @Test func activationArena() throws {
        // Three convolutions in a chain, then an operator that reads the last one as an array.
        let g = graph([node("Conv", ["x", "w1"], "a", ["pads": .ints([1, 1, 1, 1])]), node("Conv", ["a", "w2"], "b"),
                       node("Conv", ["b", "w3"], "c", ["pads": .ints([1, 1, 1, 1])]), node("Neg", ["c"], "y")],
                      ["w1": tensor([8, 8, 3, 3], seed: 40), "w2": tensor([8, 8, 1, 1], seed: 41), "w3": tensor([8, 8, 3, 3], seed: 42)],
                      input: [1, 8, 10, 10])
        let b = try build(g, input: input([1, 8, 10, 10]), pass: "activation-arena")
        #expect(Set(b.on.activations.placements.keys) == ["a", "b"], "c is read by Neg, so it stays an array: \(b.on.activations.placements.keys)")
        // a and b are alive together (b is made from a): one block of both, no more.
        #expect(b.on.activations.blockElements == 2 * 800)
        #expect(b.off.activations.isEmpty)
        // Opt-in: a plan built under the process's switches (none set in tests) has no arena.
        let plain = try ExecutionPlan.build(graph: g, inputShapes: ["x": [1, 8, 10, 10]], config: KernelConfig(environment: [:]))
        #expect(plain.activations.isEmpty)
        let enabled = try ExecutionPlan.build(graph: g, inputShapes: ["x": [1, 8, 10, 10]],
                                              config: KernelConfig(environment: ["SIGHTLINE_ENABLE_PASSES": "activation-arena"]))
        #expect(!enabled.activations.isEmpty)
    }

    // MARK: - Specialisation

    /// Building a plan runs the graph once; each intermediate goes after its last reader, so a
    /// chain of 20 steps holds about two values at once, not 20 (the OCR detector's plan once
    /// cost 1 GB this way).
    @Test func specialisingHoldsOnlyLiveValues() throws {
        var nodes: [IRNode] = []
        var previous = "x"
        for i in 0..<20 {
            nodes.append(node(i % 2 == 0 ? "Relu" : "Sigmoid", [previous], i == 19 ? "y" : "v\(i)"))
            previous = i == 19 ? "y" : "v\(i)"
        }
        let size = 64 * 64
        let plan = try ExecutionPlan.build(graph: graph(nodes, input: [1, 1, 64, 64]), inputShapes: ["x": [1, 1, 64, 64]])
        #expect(plan.specialisationPeakElements <= 2 * size, "\(plan.specialisationPeakElements / size) values held at once")
        #expect(plan.shapes["v7"] == [1, 1, 64, 64], "every value's shape is still known")
    }

    // MARK: - The list and the switch

    @Test func everyPassHasATestAndANameOnce() {
        let tested: Set<String> = ["remove-aliases", "cancel-transposes", "fold-pads", "resize-after-pointwise", "fuse-attention", "fuse-layer-norm", "conv-steps",
                                   "fold-conv-affine", "fold-conv-transpose", "fuse-conv-activation", "fuse-hard-swish", "fuse-post-affine", "fuse-elementwise-relu",
                                   "fuse-residual-add", "fuse-scaled-residual", "fuse-upsample-add", "remove-dead-steps", "winograd", "pack-conv-weights", "indirect-im2col", "interleave-depthwise",
                                   "pack-linear", "fuse-expand-depthwise", "drop-unread-weights", "activation-arena"]
        #expect(Set(PlanPasses.names) == tested)
        #expect(PlanPasses.names.count == tested.count)
    }

    @Test func theEnvironmentSwitchesPassesOffByName() {
        let config = KernelConfig(environment: ["SIGHTLINE_DISABLE_PASSES": "winograd, fuse-expand-depthwise,,nonsense"])
        #expect(config.disabledPasses == ["winograd", "fuse-expand-depthwise", "nonsense"])
        #expect(!config.runs(pass: "winograd") && config.runs(pass: "fold-pads"))
        #expect(PlanPasses.unknown(in: config.disabledPasses) == ["nonsense"])
    }
}
