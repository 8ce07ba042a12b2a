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
    ],
    targets: [
        // MARK: C libraries from Debian
        .systemLibrary(name: "COrtp", pkgConfig: "ortp", providers: [.apt(["libortp-dev"])]),
        .systemLibrary(name: "COpus", pkgConfig: "opus", providers: [.apt(["libopus-dev"])]),
        .systemLibrary(name: "CFFTW", pkgConfig: "fftw3f", providers: [.apt(["libfftw3-dev"])]),
        .systemLibrary(name: "CSpanDSP", pkgConfig: "spandsp", providers: [.apt(["libspandsp-dev"])]),
        .systemLibrary(name: "CSoxr", pkgConfig: "soxr", providers: [.apt(["libsoxr-dev"])]),

        // MARK: The shared core: audio in, codecs, streaming features, windows
        .target(
            name: "EmotionCore",
            dependencies: ["COpus", "CFFTW", "CSpanDSP", "CSoxr"],
            resources: [.embedInCode("Resources/default-model.json")],
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
            dependencies: ["COrtp", "EmotionCore"],
            swiftSettings: swiftSettings
        ),
        // MARK: The command line
        .executableTarget(
            name: "emotiontap",
            dependencies: [
                "EmotionCore",
                "EmotionTraining",
                "EmotionRTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EmotionCoreTests",
            dependencies: ["EmotionCore", "EmotionTraining", "EmotionRTP"],
            resources: [.copy("Fixtures"), .copy("Goldens")],
            swiftSettings: swiftSettings
        ),
    ]
)
