import Crypto
import Foundation
import SightlineCore

/// One file to process, as it travels on the work queue. Its key names the result: the same
/// content under the same results-deciding pipeline is one item, wherever and however often
/// it is submitted, so a redelivery or a second submit never makes a second output.
public struct WorkItem: Codable, Sendable, Equatable {
    public static let version = 1
    public var version = WorkItem.version
    /// Absolute path; workers on other machines must see the same path (a shared mount).
    public var path: String
    /// The name results are published under (the file's path below the submitted folder).
    public var name: String
    public var sha256: String
    /// `ValidatedPipeline.resultsHash` of the pipeline it is meant for.
    public var pipelineHash: String
    public var key: String
    /// Seconds since 1970 when `submit` put it on the queue.
    public var submitted: Double

    public init(path: String, name: String, sha256: String, pipelineHash: String, submitted: Double) {
        self.path = path
        self.name = name
        self.sha256 = sha256
        self.pipelineHash = pipelineHash
        self.key = Self.key(sha256: sha256, pipelineHash: pipelineHash)
        self.submitted = submitted
    }

    /// 32 hex digits of content and 12 of pipeline: a valid NATS key, message id and file name.
    public static func key(sha256: String, pipelineHash: String) -> String {
        "\(sha256.prefix(32))-\(pipelineHash.prefix(12))"
    }

    public static func decode(_ data: Data) throws -> WorkItem {
        let item: WorkItem
        do { item = try JSONDecoder().decode(WorkItem.self, from: data) } catch {
            throw ClusterError("a work item that is not valid JSON (\(data.count) bytes)", hint: "was it put there by sightline submit?")
        }
        guard item.version == WorkItem.version else {
            throw ClusterError("work item '\(item.name)' has version \(item.version); this worker reads version \(WorkItem.version)",
                               hint: "run the same sightline version for submit and workers")
        }
        guard item.key == key(sha256: item.sha256, pipelineHash: item.pipelineHash) else {
            throw ClusterError("work item '\(item.name)' has a key that does not match its content and pipeline hashes")
        }
        return item
    }

    public func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)) ?? Data()
    }
}

public struct ClusterError: UserFacingError {
    public let message: String
    public let hint: String?
    /// Retrying cannot help (the file changed or vanished, the item is malformed): dead-letter now.
    public let permanent: Bool

    public init(_ message: String, hint: String? = nil, permanent: Bool = false) {
        self.message = message
        self.hint = hint
        self.permanent = permanent
    }
}

/// sha256 of a file's bytes, read in 1 MiB blocks.
public func sha256(ofFile path: String) throws -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else {
        throw ClusterError("cannot read '\(path)'", hint: "workers need the same path as submit (a shared folder)", permanent: true)
    }
    defer { try? handle.close() }
    var hasher = SHA256()
    while true {
        let block: Data
        do { block = try handle.read(upToCount: 1 << 20) ?? Data() } catch {
            throw ClusterError("cannot read '\(path)': \(error.localizedDescription)", permanent: true)
        }
        if block.isEmpty { break }
        hasher.update(data: block)
    }
    return hasher.finalize().map { String(format: "%02x", $0) }.joined()
}
