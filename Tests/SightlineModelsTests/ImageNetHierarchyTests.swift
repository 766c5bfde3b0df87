import Foundation
import Testing
import SightlineCore
@testable import SightlineModels
import SightlineTestSupport

/// The WordNet hierarchy over ImageNet's classes and hedged labels.
@Suite struct ImageNetHierarchyTests {
    let hierarchy = ImageNetHierarchy.shared!

    func probabilities(_ pairs: [(String, Float)]) throws -> [Float] {
        var p = [Float](repeating: 0, count: 1000)
        for (name, value) in pairs { p[try #require(ImageNetLabels.names.firstIndex(of: name), "\(name)")] = value }
        return p
    }

    /// The committed file is what the script derives from Debian's wordnet-base and darknet
    /// (Scripts/setup installs both).
    @Test func theResourceIsWhatTheScriptDerives() throws {
        let output = try Tool.run("python3", [repositoryRoot + "/Scripts/wordnet/imagenet_hierarchy.py"]).stdout
        let committed = try String(contentsOfFile: repositoryRoot + "/Sources/SightlineModels/Resources/imagenet-hierarchy.tsv", encoding: .utf8)
        #expect(output == committed)
    }

    /// Sorted WordNet ids are the class order: every class's first lemma is our label's first name.
    @Test func classesAreInTheModelsOrder() {
        #expect(hierarchy.nodes.count > 1000)
        for i in 0..<1000 {
            #expect(hierarchy.nodes[i].name.lowercased() == ImageNetLabels.names[i].lowercased(), "class \(i)")
        }
        #expect(hierarchy.nodes[0].wnid == "n01440764")  // tench
        #expect(hierarchy.leafCount[hierarchy.lineage[0].last { hierarchy.nodes[$0].name == "entity" }!] == 1000)
    }

    @Test func aSureLeafIsNamedItself() throws {
        let concept = try #require(hierarchy.hedge(try probabilities([("mountain bike", 0.8), ("tricycle", 0.1)]), bar: 0.5))
        #expect(concept.name == "mountain bike" && concept.isClass)
        #expect(concept.path.first == "entity" && concept.path.last == "mountain bike")
        #expect(concept.path.contains("bicycle") && concept.path.contains("wheeled vehicle"))
    }

    @Test func massRisesUntilItClearsTheBar() throws {
        // Bicycles: mountain bike + tandem = 0.55 — "bicycle".
        let bicycle = try #require(hierarchy.hedge(try probabilities([("mountain bike", 0.3), ("bicycle-built-for-two", 0.25), ("tricycle", 0.2)]), bar: 0.5))
        #expect(bicycle.name == "bicycle" && !bicycle.isClass && abs(bicycle.mass - 0.55) < 1e-6)
        // Less sure of a bicycle: the wheeled vehicle above it (with the tricycle and the rickshaw).
        let wheeled = try #require(hierarchy.hedge(try probabilities([("mountain bike", 0.3), ("tricycle", 0.2), ("jinrikisha", 0.15)]), bar: 0.5))
        #expect(wheeled.name == "wheeled vehicle" && abs(wheeled.mass - 0.65) < 1e-6)
        // A car and a boat: a vehicle.
        let vehicle = try #require(hierarchy.hedge(try probabilities([("sports car", 0.3), ("canoe", 0.3)]), bar: 0.5))
        #expect(vehicle.name == "vehicle")
    }

    @Test func tooGeneralConceptsAreNeverNamed() throws {
        // A spread over animals and objects clears the bar only at "whole"/"object": say nothing.
        #expect(hierarchy.hedge(try probabilities([("tabby", 0.3), ("teapot", 0.3)]), bar: 0.5) == nil)
        let dogs = try #require(hierarchy.hedge(try probabilities([("beagle", 0.2), ("basset", 0.2), ("tabby", 0.2)]), bar: 0.5))
        // Two hounds and a house cat: WordNet's "domestic animal" (dogs and house cats) is
        // narrower than "carnivore", which also holds the wild cats, bears and wolves.
        #expect(dogs.name == "domestic animal" && abs(dogs.mass - 0.6) < 1e-6)
    }

    @Test func aLeafReachedByTwoPathsCountsOnce() throws {
        // A missile is both a rocket (a vehicle) and a weapon: its mass reaches "entity" once.
        let mass = hierarchy.masses(try probabilities([("missile", 0.5), ("space shuttle", 0.25)]))
        let root = try #require(hierarchy.nodes.firstIndex { $0.name == "entity" })
        #expect(abs(mass[root] - 0.75) < 1e-6)
        let weapon = try #require(hierarchy.nodes.firstIndex { $0.name == "weapon" })
        let vehicle = try #require(hierarchy.nodes.firstIndex { $0.name == "vehicle" && $0.wnid == "n04524313" })
        #expect(abs(mass[weapon] - 0.5) < 1e-6 && abs(mass[vehicle] - 0.75) < 1e-6)
    }
}
