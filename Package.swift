// swift-tools-version: 6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "EmotionTap",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "emotiontap", targets: ["emotiontap"]),
        .library(name: "EmotionCore", targets: ["EmotionCore"]),
        .library(name: "EmotionMedia", targets: ["EmotionMedia"]),
        .library(name: "EmotionProtocol", targets: ["EmotionProtocol"]),
        .library(name: "EmotionTapServer", targets: ["EmotionTapServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        // Without its default ConfigurationSupport trait: swift-configuration is not used here (a minute of build).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        // MARK: C libraries from Debian
        .systemLibrary(name: "COrtp", pkgConfig: "ortp", providers: [.apt(["libortp-dev"])]),
        .systemLibrary(name: "COpus", pkgConfig: "opus", providers: [.apt(["libopus-dev"])]),
        .systemLibrary(name: "CFFTW", pkgConfig: "fftw3f", providers: [.apt(["libfftw3-dev"])]),
        .systemLibrary(name: "CSpanDSP", pkgConfig: "spandsp", providers: [.apt(["libspandsp-dev"])]),
        .systemLibrary(name: "CSoxr", pkgConfig: "soxr", providers: [.apt(["libsoxr-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CSRTP", pkgConfig: "libsrtp2", providers: [.apt(["libsrtp2-dev"])]),
        .systemLibrary(
            name: "CSofiaSIP", pkgConfig: "sofia-sip-ua", providers: [.apt(["libsofia-sip-ua-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CLinux"),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        // MARK: The shared core: audio in, codecs, streaming features, model, decisions
        .target(
            name: "EmotionCore",
            dependencies: ["COpus", "CFFTW", "CSpanDSP", "CSoxr", "COpenBLAS"],
            swiftSettings: swiftSettings
        ),
        // MARK: HMAC-SHA256 and SHA-1 from OpenSSL's libcrypto (signatures, the WebSocket handshake)
        .target(
            name: "EmotionDigest",
            dependencies: ["COpenSSL"],
            swiftSettings: swiftSettings
        ),
        // MARK: The per-leg media path on plain packet values (no sockets, no RTP library)
        .target(
            name: "EmotionMedia",
            dependencies: ["EmotionCore"],
            swiftSettings: swiftSettings
        ),
        // MARK: The event protocol: typed events, the ordered JSON writer, signing, leg requests
        .target(
            name: "EmotionProtocol",
            dependencies: ["EmotionCore", "EmotionDigest", "EmotionMedia"],
            swiftSettings: swiftSettings
        ),
        // MARK: IPv4 UDP addresses and sockets
        .target(
            name: "EmotionUDP",
            swiftSettings: swiftSettings
        ),
        // MARK: SRTP (libsrtp2) for legs and the test sender
        .target(
            name: "EmotionSRTP",
            dependencies: ["CSRTP", "EmotionMedia"],
            swiftSettings: swiftSettings
        ),
        // MARK: The oRTP binding: sockets in, packet values out
        .target(
            name: "EmotionORTP",
            dependencies: ["COrtp", "EmotionMedia", "EmotionSRTP", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // MARK: The SIP stack (Sofia-SIP) and SIPREC offers: no legs, no sockets of its own for media
        .target(
            name: "EmotionSIP",
            dependencies: [
                "CSofiaSIP", "EmotionCore", "EmotionMedia", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // MARK: Stream protocols as values (AudioSocket, mod_audio_fork/jambonz, Twilio, AudioHook): no sockets
        .target(
            name: "EmotionStreams",
            dependencies: ["EmotionCore", "EmotionDigest"],
            swiftSettings: swiftSettings
        ),
        // MARK: History: the event log into a store (SQLite or PostgreSQL), and what reports read from it
        .target(
            name: "EmotionHistory",
            dependencies: [
                "CLibPQ",
                "EmotionProtocol",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // MARK: Reports from history: text tables, CSV, and self-contained HTML with SVG timelines
        .target(
            name: "EmotionReport",
            dependencies: ["EmotionHistory"],
            swiftSettings: swiftSettings
        ),
        // MARK: Training and evaluation (offline only)
        .target(
            name: "EmotionTraining",
            dependencies: ["EmotionCore"],
            swiftSettings: swiftSettings
        ),
        // MARK: The live service, built as a library: legs on workers, control API, events
        .target(
            name: "EmotionTapServer",
            dependencies: [
                "EmotionCore",
                "EmotionHistory",
                "EmotionMedia",
                "EmotionProtocol",
                "EmotionORTP",
                "EmotionSIP",
                "EmotionStreams",
                "EmotionUDP",
                "CLinux",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // MARK: Traffic for tests and benchmarks: RTP sender, impairments, hostile packets, load
        .target(
            name: "EmotionTraffic",
            dependencies: [
                "EmotionSRTP",
                "EmotionCore",
                "EmotionMedia",
                "EmotionProtocol",
                "EmotionUDP",
                "CLinux",
                "EmotionDigest",
            ],
            swiftSettings: swiftSettings
        ),
        // MARK: The command line (thin: parses arguments, calls the libraries)
        .executableTarget(
            name: "emotiontap",
            dependencies: [
                "EmotionCore",
                "EmotionHistory",
                "EmotionProtocol",
                "EmotionReport",
                "EmotionTraining",
                "EmotionTapServer",
                "EmotionTraffic",
                "EmotionUDP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // MARK: libFuzzer harness (`make fuzz` builds it with -sanitize=fuzzer; the tests replay its corpus)
        .executableTarget(
            name: "EmotionTapFuzz",
            dependencies: ["EmotionCore", "EmotionMedia", "EmotionProtocol", "EmotionTapServer"],
            swiftSettings: swiftSettings + [.unsafeFlags(["-parse-as-library"])]
        ),

        // MARK: Tests: one target per module, shared helpers, and the black-box tests of the binary
        .target(
            name: "EmotionTestSupport",
            dependencies: [
                "EmotionCore", "EmotionProtocol", "EmotionUDP",
            ],
            path: "Tests/EmotionTestSupport",
            resources: [.copy("Fixtures"), .copy("Goldens")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EmotionCoreTests",
            dependencies: ["EmotionCore", "EmotionTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EmotionTrainingTests",
            dependencies: ["EmotionCore", "EmotionTraining", "EmotionTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EmotionMediaTests",
            dependencies: ["EmotionCore", "EmotionMedia", "EmotionTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EmotionHistoryTests",
            dependencies: [
                "EmotionHistory", "EmotionMedia", "EmotionProtocol", "EmotionTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EmotionReportTests",
            dependencies: ["EmotionHistory", "EmotionReport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EmotionProtocolTests",
            dependencies: ["EmotionCore", "EmotionMedia", "EmotionProtocol", "EmotionTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EmotionORTPTests",
            dependencies: ["COrtp", "EmotionMedia", "EmotionORTP", "EmotionSRTP", "EmotionUDP", "EmotionTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EmotionTapServerTests",
            dependencies: [
                "EmotionCore", "EmotionDigest", "EmotionMedia", "EmotionProtocol", "EmotionSIP", "EmotionTapServer",
                "EmotionTraffic", "EmotionUDP", "EmotionTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EmotionStreamsTests",
            dependencies: ["EmotionCore", "EmotionStreams"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EmotionSIPTests",
            dependencies: ["EmotionCore", "EmotionMedia", "EmotionSIP"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EmotionTrafficTests",
            dependencies: [
                "EmotionCore", "EmotionMedia", "EmotionProtocol", "EmotionTraffic", "EmotionTestSupport", "EmotionUDP",
                "CLinux",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EmotionTapEndToEndTests",
            dependencies: ["EmotionCore", "EmotionMedia", "EmotionProtocol", "EmotionTestSupport"],
            swiftSettings: swiftSettings
        ),
    ]
)
