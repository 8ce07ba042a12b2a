// swift-tools-version: 6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "EmotionTap",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "emotiontap", targets: ["emotiontap"]),
        .library(name: "EmotionCore", targets: ["EmotionCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // MARK: C libraries from Debian
        .systemLibrary(name: "COrtp", pkgConfig: "ortp", providers: [.apt(["libortp-dev"])]),
        .systemLibrary(name: "COpus", pkgConfig: "opus", providers: [.apt(["libopus-dev"])]),
        .systemLibrary(name: "CFFTW", pkgConfig: "fftw3f", providers: [.apt(["libfftw3-dev"])]),
        .systemLibrary(name: "CSpanDSP", pkgConfig: "spandsp", providers: [.apt(["libspandsp-dev"])]),
        .systemLibrary(name: "CSoxr", pkgConfig: "soxr", providers: [.apt(["libsoxr-dev"])]),
        .systemLibrary(name: "CLinux"),

        // MARK: The shared core: audio in, codecs, streaming features, windows
        .target(
            name: "EmotionCore",
            dependencies: ["COpus", "CFFTW", "CSpanDSP", "CSoxr"],
            swiftSettings: swiftSettings
        ),
        // MARK: Training and evaluation (offline only)
        .target(
            name: "EmotionTraining",
            dependencies: ["EmotionCore"],
            swiftSettings: swiftSettings
        ),
        // MARK: RTP receive sessions (oRTP)
        .target(
            name: "EmotionRTP",
            dependencies: ["COrtp", "EmotionCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // MARK: The live service: control API, legs on worker threads, events
        .target(
            name: "EmotionTapServer",
            dependencies: [
                "EmotionCore",
                "EmotionRTP",
                "CLinux",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // MARK: The command line
        .executableTarget(
            name: "emotiontap",
            dependencies: [
                "EmotionCore",
                "EmotionTraining",
                "EmotionRTP",
                "EmotionTapServer",
                "CLinux",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // MARK: libFuzzer harness (built only by `make fuzz`, with -sanitize=fuzzer)
        .executableTarget(
            name: "EmotionTapFuzz",
            dependencies: ["EmotionCore", "EmotionRTP", "EmotionTapServer"],
            swiftSettings: swiftSettings + [.unsafeFlags(["-parse-as-library"])]
        ),
        .testTarget(
            name: "EmotionCoreTests",
            dependencies: ["EmotionCore", "EmotionTraining", "EmotionRTP", "EmotionTapServer",
                           .product(name: "Crypto", package: "swift-crypto")],
            resources: [.copy("Fixtures"), .copy("Goldens")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EmotionTapServerTests",
            dependencies: ["EmotionCore", "EmotionRTP", "EmotionTapServer", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
    ]
)
