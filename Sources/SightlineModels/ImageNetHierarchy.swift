import Foundation
import SightlineCore
import SightlineInference

/// The WordNet hierarchy above the 1000 ImageNet classes (Resources/imagenet-hierarchy.tsv,
/// written by Scripts/wordnet/imagenet_hierarchy.py from Debian's wordnet-base and darknet),
/// and "hedging your bets" (Deng et al., CVPR 2012): a classifier's probabilities summed up the
/// tree, and the most specific concept whose mass clears a confidence bar named instead of a
/// guess among leaves. 30 % "mountain bike" + 25 % "bicycle-built-for-two" + 20 % "tricycle"
/// is not sure of any bicycle, but 75 % sure of a wheeled vehicle.
public struct ImageNetHierarchy: Sendable {
    public struct Node: Sendable {
        public var wnid: String
        public var name: String
        public var parents: [Int]
        /// Too general or too technical to say in a caption (mass still flows through it).
        public var nameable: Bool
    }

    public let nodes: [Node]
    /// For each class (the first 1000 nodes), itself and every ancestor, once each.
    public let lineage: [[Int]]
    /// Leaf classes under each node (itself included for a class): how specific it is.
    public let leafCount: [Int]

    public static let shared: ImageNetHierarchy? = {
        guard let url = Bundle.module.url(forResource: "imagenet-hierarchy", withExtension: "tsv"),
              let text = try? String(contentsOf: url, encoding: .utf8) else { return nil }
        return try? ImageNetHierarchy(tsv: text)
    }()

    public init(tsv: String) throws {
        var nodes: [Node] = []
        for (number, line) in tsv.split(separator: "\n").enumerated() {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 4 else { throw ModelError.malformed("imagenet-hierarchy line \(number + 1): \(fields.count) fields") }
            let parents = fields[2].isEmpty ? [] : try fields[2].split(separator: ",").map { field -> Int in
                guard let value = Int(field) else { throw ModelError.malformed("imagenet-hierarchy line \(number + 1): parent '\(field)'") }
                return value
            }
            nodes.append(Node(wnid: String(fields[0]), name: String(fields[1]), parents: parents, nameable: fields[3] == "1"))
        }
        guard nodes.count >= 1000, nodes.allSatisfy({ $0.parents.allSatisfy { $0 >= 0 && $0 < nodes.count } }) else {
            throw ModelError.malformed("imagenet-hierarchy: \(nodes.count) nodes, or a parent out of range")
        }
        var lineage: [[Int]] = []
        var leafCount = [Int](repeating: 0, count: nodes.count)
        for leaf in 0..<1000 {
            var seen: Set<Int> = [leaf]
            var stack = [leaf]
            while let node = stack.popLast() {
                for parent in nodes[node].parents where seen.insert(parent).inserted { stack.append(parent) }
            }
            let ordered = seen.sorted()
            for node in ordered { leafCount[node] += 1 }
            lineage.append(ordered)
        }
        self.nodes = nodes
        self.lineage = lineage
        self.leafCount = leafCount
    }

    /// Every ancestor of the node with this WordNet id (all paths), as WordNet ids.
    public func ancestors(ofWnid wnid: String) -> Set<String> {
        guard let start = nodes.firstIndex(where: { $0.wnid == wnid }) else { return [] }
        var seen: Set<Int> = []
        var stack = [start]
        while let node = stack.popLast() {
            for parent in nodes[node].parents where seen.insert(parent).inserted { stack.append(parent) }
        }
        return Set(seen.map { nodes[$0].wnid })
    }

    /// Probability mass of every node: the sum of its leaf classes' probabilities (each leaf
    /// counted once, though WordNet may reach an ancestor by two paths).
    public func masses(_ probabilities: [Float]) -> [Double] {
        var mass = [Double](repeating: 0, count: nodes.count)
        for (leaf, p) in probabilities.prefix(1000).enumerated() where p > 0 {
            for node in lineage[leaf] { mass[node] += Double(p) }
        }
        return mass
    }

    /// The most specific nameable concept (fewest leaf classes under it) whose mass is at
    /// least `bar`; ties go to the larger mass. Nil when nothing nameable clears the bar.
    public func hedge(_ probabilities: [Float], bar: Double) -> Concept? {
        let mass = masses(probabilities)
        var best: Int?
        for node in nodes.indices where nodes[node].nameable && mass[node] >= bar {
            guard let current = best else {
                best = node
                continue
            }
            if leafCount[node] < leafCount[current] || (leafCount[node] == leafCount[current] && mass[node] > mass[current]) {
                best = node
            }
        }
        return best.map { concept($0, mass: mass) }
    }

    /// A node as published: its name, WordNet id, mass and the path from the root to it
    /// (through the heavier parent where WordNet has two).
    public func concept(_ node: Int, mass: [Double]) -> Concept {
        var path = [node]
        var current = node
        while let next = nodes[current].parents.max(by: { mass[$0] < mass[$1] }) {
            path.append(next)
            current = next
        }
        return Concept(name: nodes[node].name, wnid: nodes[node].wnid, mass: mass[node], path: path.reversed().map { nodes[$0].name },
                       isClass: node < 1000)
    }
}
