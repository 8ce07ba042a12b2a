import ArgumentParser
import EmotionCore
import Foundation

struct FeatureOptions: ParsableArguments {
    @Option(help: "Analysis sample rate in Hz; audio at other rates is resampled (libsoxr).")
    var sampleRate: Int = 8000
    @Option(help: "FFT size (librosa n_fft); also the RMS and zero-crossing frame length.")
    var nFFT: Int = 512
    @Option(help: "Hann window length in samples (librosa win_length).")
    var winLength: Int = 400
    @Option(help: "Samples between frames (librosa hop_length).")
    var hopLength: Int = 160
    @Option(help: "Mel bands behind the MFCCs.")
    var nMels: Int = 40
    @Option(help: "Lowest mel filter frequency in Hz.")
    var fmin: Double = 0
    @Option(help: "Highest mel filter frequency in Hz (default: sample-rate / 2).")
    var fmax: Double?

    var config: FeatureConfig {
        FeatureConfig(
            sampleRate: sampleRate, nFFT: nFFT, winLength: winLength, hopLength: hopLength,
            nMels: nMels, fmin: fmin, fmax: fmax)
    }
}

struct ChannelOption: ParsableArguments {
    @Option(
        help: "Channel to analyse in a multi-channel file: 'mix' or a 0-based index (stereo calls: 0 left, 1 right).")
    var channel: String = "mix"

    func selection() throws -> ChannelSelection {
        if channel == "mix" { return .mix }
        if channel == "left" { return .index(0) }
        if channel == "right" { return .index(1) }
        guard let i = Int(channel), i >= 0 else {
            throw ValidationError("--channel must be 'mix', 'left', 'right' or a 0-based index")
        }
        return .index(i)
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case jsonl, csv
    /// Compute only (with --timing: speed comparisons without the cost of printing).
    case none
}

struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "Print per-frame features (RMS, ZCR, spectral centroid, 13 MFCCs, 12 chroma) of WAV files."
    )

    @Argument(help: "WAV files (PCM16, float32, mu-law or A-law; any rate; mono or stereo).")
    var files: [String]
    @OptionGroup var features: FeatureOptions
    @OptionGroup var channel: ChannelOption
    @Option(help: "Output format.")
    var format: OutputFormat = .jsonl
    @Flag(help: "Also print the extra model descriptors (pitch, voicing, roll-off, flatness, slope, flux, band ratio).")
    var extended = false
    @Flag(help: "Print to stderr how long feature extraction took (decoding and output excluded), in times real time.")
    var timing = false

    func validate() throws {
        do { try features.config.validate() } catch { throw ValidationError(error.description) }
        _ = try channel.selection()
    }

    func run() throws {
        let config = features.config
        let selection = try channel.selection()
        let extractor = try FrameFeatureExtractor(config: config)
        let out = StandardOutput()
        if format == .csv { out.write(FrameRowFormatter.csvHeader(extended: extended, fileColumn: files.count > 1)) }
        var extractionSeconds = 0.0, audioSeconds = 0.0, frames = 0
        let failures = forEachAudioFile(files, channel: selection, sampleRate: config.sampleRate) { file, audio in
            extractor.reset()
            let emit: (FrameView) -> Void = { frame in
                frames += 1
                switch format {
                case .jsonl:
                    out.write(FrameRowFormatter.json(frame, extended: extended, file: files.count > 1 ? file : nil))
                case .csv:
                    out.write(FrameRowFormatter.csv(frame, extended: extended, file: files.count > 1 ? file : nil))
                case .none: break
                }
            }
            let started = ContinuousClock.now
            extractor.push(audio.samples, onFrame: emit)
            extractor.finish(onFrame: emit)
            let elapsed = ContinuousClock.now - started
            extractionSeconds += Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            audioSeconds += Double(audio.samples.count) / Double(config.sampleRate)
        }
        out.flush()
        if timing {
            let speed = extractionSeconds > 0 ? audioSeconds / extractionSeconds : 0
            StandardError.line(
                String(
                    format: "timing: files=%d audio_s=%.3f frames=%d extraction_s=%.6f realtime_x=%.1f",
                    files.count - failures, audioSeconds, frames, extractionSeconds, speed))
        }
        if failures > 0 { throw ExitCode(2) }
    }
}
