import Testing
import Synchronization
import SightlineTestSupport
import SightlineCore
@testable import SightlineInference
@testable import SightlineKernels

/// A model's plans for other input shapes (batch sizes, OCR line widths) share one copy of
/// the folded and prepared weights, and compute what they computed apart.
@Suite struct WeightBankTests {
    private func conv(_ input: String, _ weight: String, _ output: String, _ attributes: [String: IRAttribute] = [:]) -> IRNode {
        IRNode(op: "Conv", name: output, inputs: [input, weight], outputs: [output], attributes: attributes)
    }

    private func addresses(_ plan: ExecutionPlan) -> [UnsafeRawPointer?] {
        plan.steps.flatMap(\.unfused).compactMap(\.conv).flatMap { conv -> [UnsafeRawPointer?] in
            ([conv.weight] + ConvStep.preparedForms.compactMap { conv[keyPath: $0.path] })
                .map { array in array.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) } }
        }
    }

    @Test func plansForTwoBatchSizesShareTheirWeights() throws {
        // 3×3 (Winograd), depthwise 3×3 (interleaved), 1×1 (packed): every prepared form.
        let graph = IRGraph(nodes: [conv("x", "w1", "a", ["pads": .ints([1, 1, 1, 1])]),
                                    conv("a", "w2", "b", ["group": .int(16), "pads": .ints([1, 1, 1, 1])]),
                                    conv("b", "w3", "y")],
                            constants: ["w1": .float(Tensor(shape: [16, 8, 3, 3], data: random(16 * 8 * 9, seed: 1))),
                                        "w2": .float(Tensor(shape: [16, 1, 3, 3], data: random(16 * 9, seed: 2))),
                                        "w3": .float(Tensor(shape: [8, 16, 1, 1], data: random(8 * 16, seed: 3)))],
                            inputs: [.init(name: "x", dims: [nil, 8, 12, 12])], outputs: ["y"], metadata: [:], opset: 13)
        let model = try InferenceModel(graph: graph, threads: 1)
        let one = Tensor(shape: [1, 8, 12, 12], data: random(8 * 144, seed: 4))
        let two = Tensor(shape: [2, 8, 12, 12], data: one.data + random(8 * 144, seed: 5))
        let alone = try #require(try model.run(one)["y"])
        let batched = try #require(try model.run(two)["y"])
        #expect(Array(batched.data.prefix(alone.data.count)) == alone.data, "the first image computes the same")
        let first = addresses(try model.plan(for: [1, 8, 12, 12])), second = addresses(try model.plan(for: [2, 8, 12, 12]))
        #expect(first.count >= 4 && first.count == second.count, "\(first.count) arrays")
        #expect(first == second, "every weight array is one copy")
    }

    /// Delta execution's plan keeps the folded weights a dense plan drops; what both hold is
    /// one copy, and both compute the same.
    @Test func aDeltaPlanSharesWhatTheDensePlanHolds() throws {
        let graph = IRGraph(nodes: [conv("x", "w1", "a", ["pads": .ints([1, 1, 1, 1])]), conv("a", "w3", "y")],
                            constants: ["w1": .float(Tensor(shape: [16, 8, 3, 3], data: random(16 * 8 * 9, seed: 1))),
                                        "w3": .float(Tensor(shape: [8, 16, 1, 1], data: random(8 * 16, seed: 3)))],
                            inputs: [.init(name: "x", dims: [1, 8, 12, 12])], outputs: ["y"], metadata: [:], opset: 13)
        let model = try InferenceModel(graph: graph, threads: 1)
        let shape = [1, 8, 12, 12]
        let dense = try model.plan(for: shape), delta = try model.plan(for: shape, forDelta: true)
        let denseConvs = dense.steps.compactMap(\.conv), deltaConvs = delta.steps.compactMap(\.conv)
        #expect(denseConvs.count == 2 && deltaConvs.count == 2)
        #expect(denseConvs.allSatisfy { $0.weight.isEmpty }, "a dense run reads only the prepared copies")
        #expect(deltaConvs.allSatisfy { !$0.weight.isEmpty }, "masked convolutions read the folded weights")
        for (a, b) in zip(denseConvs, deltaConvs) {
            for form in ConvStep.preparedForms {
                guard let x = a[keyPath: form.path], let y = b[keyPath: form.path] else { continue }
                #expect(x.withUnsafeBufferPointer { $0.baseAddress } == y.withUnsafeBufferPointer { $0.baseAddress }, "\(form.name): one copy")
            }
        }
        let x = Tensor(shape: shape, data: random(8 * 144, seed: 4))
        let plain = try #require(try model.run(x)["y"])
        let (outputs, _) = try model.runDelta(x, changed: nil, layout: .nchw, state: DeltaState())
        #expect(try #require(outputs["y"]).data == plain.data)
    }

    /// A reloadable model lets its graph's weights go once a plan is built, reads them again
    /// for a new input shape, and computes what a model that kept them computes.
    @Test func aReloadableModelHoldsItsWeightsOnlyInItsPlans() throws {
        let graph = IRGraph(nodes: [conv("x", "w1", "a", ["pads": .ints([1, 1, 1, 1])]), conv("a", "w3", "y")],
                            constants: ["w1": .float(Tensor(shape: [16, 8, 3, 3], data: random(16 * 8 * 9, seed: 1))),
                                        "w3": .float(Tensor(shape: [8, 16, 1, 1], data: random(8 * 16, seed: 3)))],
                            inputs: [.init(name: "x", dims: [nil, 8, nil, nil])], outputs: ["y"], metadata: [:], opset: 13)
        let reloads = Mutex(0)
        let reloadable = try InferenceModel(graph: graph, threads: 1, reload: {
            reloads.withLock { $0 += 1 }
            return graph
        })
        let keeping = try InferenceModel(graph: graph, threads: 1)
        #expect(reloadable.holdsGraphWeights)
        for (i, shape) in [[1, 8, 12, 12], [1, 8, 20, 16], [1, 8, 12, 12]].enumerated() {
            let x = Tensor(shape: shape, data: random(shape.reduce(1, *), seed: UInt64(10 + i)))
            #expect(try #require(try reloadable.run(x)["y"]).data == (try #require(try keeping.run(x)["y"])).data)
            #expect(!reloadable.holdsGraphWeights, "after planning \(shape)")
        }
        #expect(reloads.withLock { $0 } == 1, "read again for the second shape only; the third was planned before")
        #expect(keeping.holdsGraphWeights)
        let plan = try reloadable.plan(for: [1, 8, 12, 12])
        #expect(plan.constants.isEmpty, "the steps hold their weights; no graph copy stays: \(plan.constants.keys.sorted())")
    }

    @Test func differentWeightsUnderOneNameAreNotShared() {
        var bank = WeightBank()
        func plan(_ weights: [Float]) -> ExecutionPlan {
            let conv = ConvStep(geometry: Conv2DGeometry(kernelH: 1, kernelW: 1), weight: weights, bias: nil, outChannels: 2, groups: 1, activation: .none)
            return ExecutionPlan(steps: [PlanStep(kind: .conv(conv), inputs: ["x"], outputs: ["y"])], constants: [:], outputs: ["y"], releases: [[]], shapes: [:])
        }
        var a = plan([1, 2, 3, 4]), b = plan([1, 2, 3, 5])
        bank.share(&a)
        bank.share(&b)
        #expect(b.steps[0].conv?.weight == [1, 2, 3, 5])
    }
}
