import Foundation

/// The output folder's layout for cluster items: each item is written into its own staging
/// folder, then moved to `OUTPUT/KEY/` with one rename(2). A folder named by its key is
/// therefore always complete, and only the first of two workers racing on one item gets to
/// publish it: the second rename finds the folder there and fails.
public struct ItemOutputs: Sendable {
    public let directory: URL
    public static let stagingFolder = ".staging"
    /// Written into every item's folder before it is committed: what it is and who made it.
    public static let manifestName = "item.json"

    public init(directory: URL) { self.directory = directory }

    public func final(key: String) -> URL { directory.appendingPathComponent(key, isDirectory: true) }

    public func isComplete(key: String) -> Bool {
        FileManager.default.fileExists(atPath: final(key: key).appendingPathComponent(Self.manifestName).path)
    }

    /// A fresh, empty staging folder for this worker's attempt at `key`.
    public func stage(key: String, worker: String) throws -> URL {
        let staging = directory.appendingPathComponent(Self.stagingFolder, isDirectory: true)
            .appendingPathComponent("\(key).\(worker)", isDirectory: true)
        try? FileManager.default.removeItem(at: staging)
        do {
            try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        } catch {
            throw ClusterError("cannot create '\(staging.path)': \(error.localizedDescription)", hint: "is --output writable?")
        }
        return staging
    }

    public enum Commit: Equatable, Sendable {
        case committed
        /// Another attempt committed first; this one was discarded.
        case alreadyThere
    }

    /// Writes the manifest into `staging`, then renames it to the item's final folder. Other
    /// stagings of the same key (attempts by workers that died) are removed afterwards.
    public func commit(staging: URL, key: String, manifest: Data) throws -> Commit {
        do {
            try manifest.write(to: staging.appendingPathComponent(Self.manifestName), options: .atomic)
        } catch {
            throw ClusterError("cannot write the manifest in '\(staging.path)': \(error.localizedDescription)")
        }
        let target = final(key: key)
        let result: Commit
        if rename(staging.path, target.path) == 0 {
            result = .committed
        } else if errno == EEXIST || errno == ENOTEMPTY {
            try? FileManager.default.removeItem(at: staging)
            result = .alreadyThere
        } else {
            let reason = String(cString: strerror(errno))
            throw ClusterError("cannot move '\(staging.path)' to '\(target.path)': \(reason)")
        }
        removeStagings(key: key)
        return result
    }

    /// Drops every staging folder of `key`: what dead or slower attempts left.
    public func removeStagings(key: String) {
        let folder = directory.appendingPathComponent(Self.stagingFolder, isDirectory: true)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        for name in names where name.hasPrefix(key + ".") {
            try? FileManager.default.removeItem(at: folder.appendingPathComponent(name))
        }
    }
}
