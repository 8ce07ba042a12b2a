// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "EmotionTapBenchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(name: "EmotionTap", path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "FeatureBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "EmotionCore", package: "EmotionTap"),
            ],
            path: "Benchmarks/FeatureBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        )
    ]
)
