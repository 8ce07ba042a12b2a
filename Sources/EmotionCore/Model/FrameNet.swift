import Foundation

/// The frame-level network trained by `training/frame_model.py`: causal dilated 1-D convolutions over
/// `FrameNetInputs` (the first with stride 2, then residual ones), per-frame LayerNorm and ReLU, attentive
/// statistics pooling over the window's speech frames, a hidden layer and two heads (7-way emotion,
/// upset). Weights as the training script writes them; `FrameNetStream` runs it on a live leg.
public struct FrameNet: Codable, Sendable, Equatable {
    public struct Block: Codable, Sendable, Equatable {
        public var inputs: Int
        public var outputs: Int
        public var kernel: Int
        public var dilation: Int
        public var stride: Int
        public var residual: Bool
        /// `outputs x (kernel * inputs)`, row-major, tap-major within a row (the im2col layout).
        public var weights: PackedFloats
        public var bias: PackedFloats
        public var normScale: PackedFloats
        public var normShift: PackedFloats
        public var normEpsilon: Float

        /// Zeros the convolution pads on the left so that output `j` reads inputs up to `stride * j + stride - 1`.
        var leftPad: Int { (kernel - 1) * dilation - (stride - 1) }
        var receptiveSpan: Int { (kernel - 1) * dilation + 1 }
    }

    public var inputs: [String]
    /// Frames of history before a window that its first pooled output reads; a leg starts with this many
    /// zero frames (as training's windows at a clip's start do).
    public var context: Int
    /// Frames in a full window (the model's `WindowConfig.length`).
    public var windowFrames: Int
    public var inputMean: PackedFloats
    public var inputScale: PackedFloats
    public var pitchPrior: Double
    public var channelPrior: [Double]
    /// For a network that also reads the mel bands (`frame_model.py train --mel`): their warm-start
    /// means, one per band. Nil: no mel band inputs.
    public var melPrior: [Double]?
    public var blocks: [Block]
    public var attention: DenseLayer
    public var attentionScore: DenseLayer
    public var hidden: DenseLayer
    public var emotionHead: DenseLayer
    public var upsetHead: DenseLayer
    /// How it was trained (the training script's command line).
    public var training: String
    /// Trained on frames as the speech gate leaves them (`frame_model.py train --gated`): a frame the gate
    /// turns down keeps only its level, zero-crossing rate, centroid and flux, the rest zero, so the live
    /// path skips the rest of its analysis (`FrameFeatureExtractor.needsFullAnalysis`). Nil or false: every
    /// frame fully analysed.
    public var gatedFrames: Bool?

    /// Input frames one top-level output depends on.
    public var receptiveField: Int {
        var field = 1
        for block in blocks.reversed() { field = (field - 1) * block.stride + block.receptiveSpan }
        return field
    }

    /// Input frames per top-level output (the product of the strides).
    public var totalStride: Int { blocks.reduce(1) { $0 * $1.stride } }

    public var channels: Int { blocks.last?.outputs ?? 0 }

    /// Shapes and values checked once, at load; nil when the network is usable, else what is wrong.
    /// `hopFrames` (the model's window hop) must fall on the network's stride so every window is scored.
    /// `melBands` (the features' mel band count) must match a network that reads the bands.
    public func problem(windowFrames expected: Int, hopFrames: Int? = nil, melBands: Int? = nil) -> String? {
        let bands = melPrior?.count ?? 0
        guard inputs == FrameNetInputs.names(melBands: bands) else {
            return "frame network reads other inputs (\(inputs.count)) than this build computes"
        }
        if let melPrior {
            guard !melPrior.isEmpty, melPrior.allSatisfy(\.isFinite) else {
                return "frame network's mel band means are empty or not finite"
            }
            if let melBands, melBands != bands {
                return "frame network reads \(bands) mel bands; the model's features have \(melBands)"
            }
        }
        guard inputMean.values.count == inputs.count, inputScale.values.count == inputs.count,
            inputScale.values.allSatisfy({ $0 > 0 && $0.isFinite }),
            channelPrior.count == FrameNetInputs.channelColumns.count, pitchPrior.isFinite
        else { return "frame network input statistics do not fit its \(inputs.count) inputs" }
        guard !blocks.isEmpty, blocks.first?.inputs == inputs.count else {
            return "frame network has no convolution for its inputs"
        }
        // Sizes bounded before any product of them, so that a hostile file cannot overflow the checks.
        let sizes = 1...4096
        guard blocks.count <= 32 else { return "frame network has \(blocks.count) blocks (at most 32)" }
        var width = inputs.count
        for (i, b) in blocks.enumerated() {
            guard b.inputs == width, sizes.contains(b.outputs), (1...16).contains(b.kernel),
                (1...64).contains(b.dilation), i == 0 ? (1...2).contains(b.stride) : b.stride == 1, b.leftPad >= 0,
                b.weights.values.count == b.outputs * b.kernel * b.inputs, b.bias.values.count == b.outputs,
                b.normScale.values.count == b.outputs, b.normShift.values.count == b.outputs,
                b.normEpsilon > 0, b.normEpsilon.isFinite, !b.residual || (b.inputs == b.outputs && b.stride == 1)
            else { return "frame network block \(i + 1) has inconsistent shapes" }
            width = b.outputs
        }
        let c = width
        func fits(_ d: DenseLayer, _ i: Int, _ o: Int) -> Bool {
            sizes.contains(d.inputs) && sizes.contains(d.outputs) && d.inputs == i && d.outputs == o
                && d.weights.values.count == i * o && d.bias.values.count == o
        }
        guard fits(attention, c, attention.outputs), fits(attentionScore, attention.outputs, 1),
            fits(hidden, 2 * c, hidden.outputs), fits(emotionHead, hidden.outputs, Emotion.allCases.count),
            fits(upsetHead, hidden.outputs, 1)
        else { return "frame network pooling or heads have inconsistent shapes" }
        guard windowFrames == expected, windowFrames % totalStride == 0 else {
            return "frame network was trained on \(windowFrames)-frame windows; the model's windows have \(expected)"
        }
        if let hopFrames, hopFrames % totalStride != 0 {
            return "frame network's stride (\(totalStride) frames) does not divide the window hop (\(hopFrames) frames)"
        }
        guard context >= receptiveField - totalStride, context % totalStride == 0 else {
            return "frame network context (\(context) frames) is shorter than its receptive field (\(receptiveField))"
        }
        let dense = [attention, attentionScore, hidden, emotionHead, upsetHead]
        let finite =
            blocks.allSatisfy {
                ($0.weights.values + $0.bias.values + $0.normScale.values + $0.normShift.values).allSatisfy(\.isFinite)
            }
            && dense.allSatisfy { ($0.weights.values + $0.bias.values).allSatisfy(\.isFinite) }
            && (inputMean.values + inputScale.values).allSatisfy(\.isFinite) && channelPrior.allSatisfy(\.isFinite)
        guard finite else { return "frame network holds values that are not finite" }
        return nil
    }
}

/// A frame network as `training/frame_model.py` writes it, checked like a model file.
public enum FrameNetFile {
    public static func load(
        path: String, windowFrames: Int, hopFrames: Int? = nil
    ) throws(EmotionModel.LoadError)
        -> FrameNet
    {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .init(description: "\(path): cannot read: \(error.localizedDescription)")
        }
        let net: FrameNet
        do { net = try JSONDecoder().decode(FrameNet.self, from: data) } catch {
            throw .init(description: "\(path): not a frame network file: \(error)")
        }
        if let problem = net.problem(windowFrames: windowFrames, hopFrames: hopFrames) {
            throw .init(description: "\(path): \(problem)")
        }
        return net
    }
}
