import Testing
import SightlineCore
import SightlineTestSupport
@testable import SightlineInference

/// Specialising a graph for an input shape runs it once on zeros; a convolution of a computed
/// value only gets its shape there (its plan step computes the values).
@Suite struct SpecialisationTests {
    static let conv = IRNode(op: "Conv", name: "c", inputs: ["x", "w", "b"], outputs: ["y"],
                             attributes: ["strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])])
    static let weight = IRValue.float(Tensor(shape: [4, 3, 3, 3], data: (0..<108).map { Float($0 % 7) - 3 }))
    static let bias = IRValue.float(Tensor(shape: [4], data: [1, 2, 3, 4]))

    @Test func aComputedValuesConvolutionGetsItsShapeOnly() throws {
        let out = try #require(try ExecutionPlan.specialisedConvolution(Self.conv, [.float(Tensor(zeros: [2, 3, 9, 11])), Self.weight, Self.bias]))
        #expect(out.count == 1 && out[0].shape == [2, 4, 5, 6])
        // Zeros, where evaluating would have given the bias at least.
        #expect(out[0].asFloat.data.allSatisfy { $0 == 0 })
        // The same shape the convolution itself gives.
        let evaluated = try Operators.evaluate(Self.conv, [.float(Tensor(zeros: [2, 3, 9, 11])), Self.weight, Self.bias])
        #expect(evaluated[0].shape == out[0].shape)
    }

    @Test func itIsCheckedAsEvaluatingWouldCheckIt() {
        // Two input channels against weights for three.
        #expect(throws: ModelError.self) {
            try ExecutionPlan.specialisedConvolution(Self.conv, [.float(Tensor(zeros: [1, 2, 9, 11])), Self.weight, Self.bias])
        }
        // Three biases for four filters.
        #expect(throws: ModelError.self) {
            try ExecutionPlan.specialisedConvolution(Self.conv, [.float(Tensor(zeros: [1, 3, 9, 11])), Self.weight,
                                                                .float(Tensor(shape: [3], data: [1, 2, 3]))])
        }
        // A kernel larger than the padded input.
        #expect(throws: ModelError.self) {
            try ExecutionPlan.specialisedConvolution(Self.conv, [.float(Tensor(zeros: [1, 3, 1, 1])),
                                                                .float(Tensor(zeros: [4, 3, 5, 5])), Self.bias])
        }
    }

    @Test func otherNodesAreEvaluated() throws {
        let relu = IRNode(op: "Relu", name: "r", inputs: ["x"], outputs: ["y"], attributes: [:])
        #expect(try ExecutionPlan.specialisedConvolution(relu, [.float(Tensor(zeros: [1, 3, 4, 4]))]) == nil)
    }

    /// A plan built this way computes what the graph means: a convolution, then a Relu.
    @Test func thePlanStillComputesTheGraph() throws {
        let graph = IRGraph(nodes: [Self.conv, IRNode(op: "Relu", name: "r", inputs: ["y"], outputs: ["z"], attributes: [:])],
                            constants: ["w": Self.weight, "b": Self.bias], inputs: [.init(name: "x", dims: [nil, 3, nil, nil])],
                            outputs: ["z"], metadata: [:], opset: 17)
        let x = Tensor(shape: [1, 3, 9, 11], data: (0..<297).map { Float($0 % 11) / 5 - 1 })
        let plan = try ExecutionPlan.build(graph: graph, inputShapes: ["x": x.shape])
        #expect(plan.shapes["z"] == [1, 4, 5, 6])
        let want = try Operators.evaluate(graph.nodes[1], [try Operators.evaluate(Self.conv, [.float(x), Self.weight, Self.bias])[0]])[0]
        var interpreter = PlanInterpreter(plan: plan, threads: 1, values: ["x": .float(x)])
        try interpreter.run(plan.steps, releases: plan.releases)
        let got = try interpreter.outputs(named: ["z"])
        #expect(got["z"]?.shape == [1, 4, 5, 6])
        #expect(normalizedMSE(try #require(got["z"]).data, want.asFloat.data) < 1e-12)
    }
}
