// swift-tools-version: 6.0
import PackageDescription

// Module layout follows Docs/DESIGN (see ../shared/DESIGN.md): dependencies point one way,
// Core <- Media, Kernels <- Inference <- Models <- Nodes -> Graph, Bus; the CLI sits on top.
let package = Package(
    name: "Sightline",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "sightline", targets: ["sightline"]),
        .library(name: "SightlineCore", targets: ["SightlineCore"]),
        .library(name: "SightlineMedia", targets: ["SightlineMedia"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // System libraries. Each module map lists every library it needs: pkg-config for
        // libavformat alone links only avformat, so avcodec/avutil/swscale are named explicitly.
        .systemLibrary(
            name: "CFFmpeg",
            path: "Sources/CFFmpeg",
            pkgConfig: "libavformat",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev", "libswscale-dev", "libswresample-dev"])]
        ),
        // No pkgConfig: libzmq's .pc adds `-isystem` flags SwiftPM rejects (with a warning on
        // every build), and zmq.h and libzmq.so sit on the default search paths.
        .systemLibrary(
            name: "CZeroMQ",
            path: "Sources/CZeroMQ",
            providers: [.apt(["libzmq3-dev"])]
        ),
        // The NATS C client (JetStream work queues, key-value leases). No pkgConfig, as for
        // ZeroMQ: nats.h and libnats.so sit on the default search paths.
        .systemLibrary(
            name: "CNats",
            path: "Sources/CNats",
            providers: [.apt(["libnats-dev"])]
        ),
        .systemLibrary(
            name: "COpenBLAS",
            path: "Sources/COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),

        .target(name: "SightlineCore"),
        .target(name: "SightlineMedia", dependencies: ["SightlineCore", "CFFmpeg"]),
        // Vector inner loops in C (AVX2/FMA chosen at run time); see its header for why.
        .target(name: "CSightlineKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(
            name: "SightlineKernels", dependencies: ["SightlineCore", "COpenBLAS", "CSightlineKernels"],
            swiftSettings: [
                .unsafeFlags(["-Ounchecked"], .when(configuration: .release)),
                // Kernels are optimised in debug builds too: the tests run real models end to end.
                .unsafeFlags(["-O"], .when(configuration: .debug)),
            ]),
        .target(
            name: "SightlineInference", dependencies: ["SightlineCore", "SightlineKernels"],
            swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        .target(
            name: "SightlineModels",
            dependencies: [
                "SightlineCore", "SightlineKernels", "SightlineInference",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ],
            resources: [.copy("Resources/imagenet1k-labels.txt"), .copy("Resources/imagenet-hierarchy.tsv"), .copy("Resources/imagenet-glosses.tsv")]
        ),
        .target(
            name: "SightlineGraph",
            dependencies: [
                "SightlineCore", "Yams",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .target(name: "SightlineBus", dependencies: ["SightlineCore", "CZeroMQ"]),
        // A NATS connection (URL list, credentials, TLS, reconnect backoff), JetStream streams,
        // pull consumers and key-value buckets over the C client.
        .target(name: "SightlineNATS", dependencies: ["SightlineCore", "CNats", .product(name: "DequeModule", package: "swift-collections")]),
        // Work spread over machines: the batch work queue on JetStream (submit, worker, status),
        // idempotent outputs keyed by content and pipeline.
        .target(
            name: "SightlineCluster",
            dependencies: ["SightlineCore", "SightlineNATS", .product(name: "Crypto", package: "swift-crypto")]),
        // The results index (SQLite through GRDB: FTS5 text, float16 vectors) and search over it.
        .target(
            name: "SightlineIndex",
            dependencies: ["SightlineCore", "CSightlineKernels", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        // Bring-your-own model servers (OpenAI-compatible HTTP): request forms, retries, cache.
        .target(
            name: "SightlineModelServers",
            dependencies: [
                "SightlineCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        .target(
            name: "SightlineNodes",
            dependencies: ["SightlineCore", "SightlineMedia", "SightlineGraph", "SightlineBus", "SightlineKernels", "SightlineInference", "SightlineModels", "SightlineIndex", "SightlineNATS", "SightlineModelServers", "Yams"]
        ),
        // `sightline serve`: the HTTP API (sources at run time, health), Prometheus metrics.
        .target(
            name: "SightlineService",
            dependencies: [
                "SightlineCore", "SightlineGraph", "SightlineMedia",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // The review page and its JSON API over the results index.
        .target(
            name: "SightlineReview",
            dependencies: ["SightlineCore", "SightlineIndex", "SightlineBus", .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "HummingbirdCore", package: "hummingbird"),
                           .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket")],
            resources: [.copy("Resources")]
        ),
        .executableTarget(
            name: "sightline",
            dependencies: [
                "SightlineModelServers",
                "SightlineCore",
                "SightlineMedia",
                "SightlineGraph",
                "SightlineBus",
                "SightlineNodes",
                "SightlineModels",
                "SightlineInference",
                "SightlineKernels",
                "SightlineService",
                "SightlineIndex",
                "SightlineReview",
                "SightlineNATS",
                "SightlineCluster",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Hostile bytes for every parser (Scripts/fuzz builds the harness with libFuzzer).
        .target(name: "SightlineFuzzTargets", dependencies: ["SightlineCore", "SightlineGraph", "SightlineInference", "SightlineNodes"]),
        .executableTarget(name: "sightline-fuzz", dependencies: ["SightlineFuzzTargets"]),

        .target(name: "SightlineTestSupport", path: "Tests/SightlineTestSupport"),
        .testTarget(name: "SightlineCoreTests", dependencies: ["SightlineCore"]),
        .testTarget(name: "SightlineModelServersTests", dependencies: ["SightlineModelServers", "SightlineTestSupport"]),
        .testTarget(name: "SightlineMediaTests", dependencies: ["SightlineMedia", "SightlineCore", "SightlineTestSupport"]),
        .testTarget(name: "SightlineGraphTests", dependencies: ["SightlineGraph", "SightlineNodes", "SightlineCore"]),
        .testTarget(
            name: "SightlineNodesTests",
            dependencies: ["SightlineNodes", "SightlineGraph", "SightlineCore", "SightlineBus", "SightlineInference", "SightlineMedia", "SightlineModels", "SightlineIndex", "SightlineTestSupport"]),
        .testTarget(name: "SightlineBusTests", dependencies: ["SightlineBus", "SightlineCore", "CZeroMQ"]),
        .testTarget(name: "SightlineKernelsTests", dependencies: ["SightlineKernels", "SightlineCore", "SightlineTestSupport"]),
        .testTarget(name: "SightlineInferenceTests", dependencies: ["SightlineInference", "SightlineKernels", "SightlineCore", "SightlineTestSupport"]),
        .testTarget(
            name: "SightlineModelsTests",
            dependencies: ["SightlineModels", "SightlineInference", "SightlineKernels", "SightlineMedia", "SightlineCore", "SightlineTestSupport"],
            resources: [.copy("Fixtures")]),
        .testTarget(name: "SightlineFuzzTests", dependencies: ["SightlineFuzzTargets", "SightlineTestSupport"]),
        .testTarget(name: "SightlineServiceTests", dependencies: ["SightlineService", "SightlineGraph", "SightlineCore"]),
        .testTarget(name: "SightlineIndexTests", dependencies: ["SightlineIndex", "SightlineCore", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "SightlineClusterTests", dependencies: ["SightlineCluster", "SightlineNATS", "SightlineCore", "SightlineTestSupport"]),
        .testTarget(name: "SystemLibrariesTests", dependencies: ["CZeroMQ", "COpenBLAS", "CFFmpeg"]),
        .testTarget(name: "EndToEndTests", dependencies: ["SightlineCore", "SightlineModels", "SightlineNATS", "SightlineTestSupport"], exclude: ["Golden", "Scripts"]),
    ],
    swiftLanguageModes: [.v6]
)
