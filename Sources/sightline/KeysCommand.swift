import ArgumentParser
import Foundation
import SightlineBus

/// `sightline keys generate NAME`: CURVE key pairs for an authenticated bus (Docs/bus.md).
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "CURVE keys for an encrypted, authenticated bus.",
        subcommands: [GenerateKeysCommand.self])
}

struct GenerateKeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write NAME.key (public: give it to the other side) and NAME.key_secret (private, mode 0600).",
        discussion: """
        The files use ZeroMQ's certificate format, so pyzmq reads them with zmq.auth.load_certificate.
        Publisher:  curve_secret_key: server.key_secret, curve_clients: FOLDER holding each subscriber's NAME.key
        Subscriber: sightline subscribe ENDPOINT --curve-key client.key_secret --curve-server-key server.key
        """)

    @Argument(help: "Base name of the two files, e.g. keys/server or keys/cam-viewer.")
    var name: String

    func run() throws {
        let folder = (name as NSString).deletingLastPathComponent
        if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        let pair = try CurveKeyPair.generate()
        let paths = try pair.write(base: name)
        print("public:  \(paths.publicPath)")
        print("secret:  \(paths.secretPath)")
    }
}
