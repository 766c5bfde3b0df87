import SightlineCore
import SightlineKernels

/// `fuse-upsample-add`: a nearest-neighbour Resize read only by a same-shape Add (the top-down
/// path of a feature pyramid: lateral + upsample(coarser)) runs inside the Add, which reads the
/// small map through row and column tables instead of a written upsampled copy. In PP-OCRv4's
/// detector the largest such upsample wrote and read back 13 MB.
struct FuseUpsampleAddPass: PlanPass {
    let name = "fuse-upsample-add"
    let summary = "a nearest Resize read only by a same-shape Add runs inside it, the Add reading the small map through index tables."

    func apply(to plan: inout ExecutionPlan) throws {
        plan.fuseUpsampleAdds()
    }
}

extension ExecutionPlan {
    mutating func fuseUpsampleAdds() {
        var r = 0
        while r < steps.count {
            defer { r += 1 }
            guard let resize = genericNode(r), resize.op == "Resize", (resize.string("mode") ?? "nearest") == "nearest",
                  steps[r].outputs.count == 1, let x = steps[r].inputs.first, let up = steps[r].outputs.first, !outputs.contains(up),
                  steps[r].inputs.dropFirst().allSatisfy({ $0.isEmpty || constants[$0] != nil }),
                  let small = shapes[x], small.count == 4, let large = shapes[up], large.count == 4,
                  let u = soleConsumer(of: up), var add = genericNode(u), add.op == "Add", steps[u].inputs.count == 2,
                  steps[u].outputs.count == 1, add.attributes["sightline.upsample_rows"] == nil,
                  let other = steps[u].inputs.first(where: { $0 != up }), shapes[other] == large,
                  let tables = upsampleTables(resize, inputs: steps[r].inputs, small: small, large: large) else { continue }
            add.attributes["sightline.upsample_rows"] = .ints(tables.rows.map { Int64($0) })
            add.attributes["sightline.upsample_columns"] = .ints(tables.columns.map { Int64($0) })
            steps[u].kind = .generic(add)
            // Input 0 is the full-size operand, input 1 the small map (Add commutes, bit for bit).
            steps[u].inputs = [other, x]
            steps.remove(at: r)
            r -= 1
        }
    }

    /// The source row of each output row and the source column of each output column of a
    /// nearest Resize from `small` to `large`, found by running the Resize operator itself on
    /// one plane holding each pixel's own index (so every nearest mode and coordinate transform
    /// means what the operator makes of it); nil unless that gives exactly `large`'s plane and
    /// the mapping is separable.
    private func upsampleTables(_ resize: IRNode, inputs: [String], small: [Int], large: [Int]) -> (rows: [Int], columns: [Int])? {
        let (h, w, oh, ow) = (small[2], small[3], large[2], large[3])
        guard small[0] == large[0], small[1] == large[1], h * w < 1 << 24 else { return nil }
        // `sizes` name the batch and channels: the one-plane probe cannot use them.
        guard inputs.count < 4 || inputs[3].isEmpty else { return nil }
        let probe = Tensor(shape: [1, 1, h, w], data: (0..<(h * w)).map { Float($0) })
        let values: [IRValue?] = [.float(probe)] + inputs.dropFirst().map { $0.isEmpty ? nil : constants[$0] }
        guard let result = try? Operators.evaluate(resize, values).first?.asFloat, result.shape == [1, 1, oh, ow] else { return nil }
        let map = result.data.map { Int($0) }
        guard zip(map, result.data).allSatisfy({ Float($0) == $1 }), let first = map.first, first >= 0 else { return nil }
        let rows = (0..<oh).map { map[$0 * ow] / w }, columns = (0..<ow).map { map[$0] % w }
        for oy in 0..<oh {
            for ox in 0..<ow where map[oy * ow + ox] != rows[oy] * w + columns[ox] { return nil }
        }
        return (rows, columns)
    }
}
