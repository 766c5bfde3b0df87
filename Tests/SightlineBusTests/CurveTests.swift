import Foundation
import Testing
@testable import SightlineBus

@Suite(.serialized) struct CurveTests {
    /// A fresh folder with a server pair, an allowed client and a stranger.
    struct Keys {
        let folder: String
        let server: CurveKeyPair
        let client: CurveKeyPair
        let stranger: CurveKeyPair

        init() throws {
            folder = NSTemporaryDirectory() + "sightline-curve-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: folder + "/clients", withIntermediateDirectories: true)
            server = try CurveKeyPair.generate()
            client = try CurveKeyPair.generate()
            stranger = try CurveKeyPair.generate()
            _ = try server.write(base: folder + "/server")
            _ = try client.write(base: folder + "/client")
            // The allowed folder holds the client's public certificate only.
            try FileManager.default.copyItem(atPath: folder + "/client.key", toPath: folder + "/clients/client.key")
        }

        func remove() { try? FileManager.default.removeItem(atPath: folder) }
    }

    @Test func certificatesRoundTripAndKeepTheSecretPrivate() throws {
        let keys = try Keys()
        defer { keys.remove() }
        #expect(try CurveKeyPair.load(keys.folder + "/server.key_secret") == keys.server)
        let publicOnly = try CurveKeyPair.load(keys.folder + "/server.key")
        #expect(publicOnly.publicKey == keys.server.publicKey && publicOnly.secretKey == nil)
        let mode = try FileManager.default.attributesOfItem(atPath: keys.folder + "/server.key_secret")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // Never overwritten: that would lock out whoever holds the old key.
        #expect(throws: CurveError.self) { _ = try keys.server.write(base: keys.folder + "/server") }
        // A public certificate is not a secret one.
        #expect(throws: CurveError.self) { _ = try CurveKeyPair.loadSecret(keys.folder + "/server.key") }
        #expect(try CurveKeyPair.loadPublicKeys(folder: keys.folder + "/clients") == [keys.client.publicKey])
    }

    @Test(arguments: ["empty", "short key", "80 KB"])
    func badCertificatesAreRefusedByName(kind: String) throws {
        let text = switch kind {
        case "empty": ""
        case "short key": "public-key = \"short\""
        default: String(repeating: "#\n", count: 40_000)
        }
        let path = NSTemporaryDirectory() + "sightline-bad-\(UUID().uuidString).key"
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try CurveKeyPair.load(path)
            Issue.record("accepted a bad certificate")
        } catch let error as CurveError {
            #expect(error.message.contains(path))
        }
    }

    @Test func onlyAllowedClientsReceive() throws {
        let keys = try Keys()
        defer { keys.remove() }
        let publisher = try BusPublisher(
            endpoints: [BusEndpoint(parsing: "pub+bind:tcp://127.0.0.1:*", defaultRole: .pub)],
            options: .init(lingerMilliseconds: 0, whenFull: .drop,
                           curve: CurveServerSettings(secretKeyFile: keys.folder + "/server.key_secret", clientKeysFolder: keys.folder + "/clients")))
        let address = try #require(publisher.boundEndpoint)
        let endpoint = BusEndpoint(role: .sub, action: .connect, address: address)
        let allowed = try BusSubscriber(endpoint: endpoint, curve: CurveClientSettings(clientKeys: keys.client, serverPublicKey: keys.server.publicKey))
        let plain = try BusSubscriber(endpoint: endpoint)
        let stranger = try BusSubscriber(endpoint: endpoint, curve: CurveClientSettings(clientKeys: keys.stranger, serverPublicKey: keys.server.publicKey))
        try publisher.waitForSubscribers(1, timeout: 5)
        Thread.sleep(forTimeInterval: 0.5)  // the refused handshakes settle too
        var encoder = EnvelopeEncoder(pipelineName: "p", pipelineHash: "h")
        for index in 0..<100 {
            try publisher.publish(encoder.encode(kind: "t", source: "s", start: Double(index), end: 0, data: [:], wallClock: 0))
        }
        var got = 0
        while try allowed.receive(timeout: 1) != nil { got += 1 }
        #expect(got == 100)
        #expect(try plain.receive(timeout: 0.3) == nil)
        #expect(try stranger.receive(timeout: 0.3) == nil)
        #expect(publisher.clientsAccepted == 1)
        #expect(publisher.clientsRefused >= 1, "the stranger's key was refused by the authenticator")
        #expect(publisher.peers == 1)
        allowed.close(); plain.close(); stranger.close()
        publisher.close()
    }

    @Test func zapRepliesFollowTheProtocol() throws {
        let client = try CurveKeyPair.generate()
        let handler = try ZAPHandler(context: ZMQContext(), allowedClientKeys: [client.publicKey])
        defer { handler.stop() }
        let key = try #require(CurveKeyPair.decode(client.publicKey))
        func request(_ mechanism: String, _ credential: [UInt8]) -> [[UInt8]] {
            [Array("1.0".utf8), Array("7".utf8), Array("sightline".utf8), Array("127.0.0.1".utf8), [], Array(mechanism.utf8), credential]
        }
        #expect(handler.reply(to: request("CURVE", key))[2] == Array("200".utf8))
        #expect(handler.reply(to: request("CURVE", [UInt8](repeating: 0, count: 32)))[2] == Array("400".utf8))
        #expect(handler.reply(to: request("NULL", []))[2] == Array("400".utf8))
        #expect(handler.reply(to: [Array("9.9".utf8)])[2] == Array("500".utf8))
        #expect(handler.reply(to: request("CURVE", key))[1] == Array("7".utf8), "the request id is echoed")
    }
}
