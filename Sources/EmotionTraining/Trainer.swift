import EmotionCore
import Foundation

/// Hyper-parameters of the multi-task network and its training.
public struct TrainerConfig: Sendable, Codable, Equatable {
    public var hidden: [Int] = [128]
    public var epochs = 40
    public var batchSize = 64
    public var learningRate: Float = 1e-3
    public var weightDecay: Float = 1e-4
    public var dropout: Float = 0.2
    /// Weight of the upset loss against the 7-way loss.
    public var upsetLossWeight: Float = 1
    public var ensemble = 3
    /// Share of the 7-way target spread evenly over the classes (label smoothing; 0 = one-hot). Acted
    /// emotions overlap (disgust and anger, fear and surprise): a one-hot target pushes the network to
    /// be sure where the speakers themselves were not.
    public var labelSmoothing: Float = 0

    public init() {}

    public var summary: String {
        let layers = hidden.map(String.init).joined(separator: "x")
        return "MLP \(layers) ReLU, dropout \(dropout), AdamW lr \(learningRate) wd \(weightDecay), "
            + "\(epochs) epochs, batch \(batchSize), class-balanced, ensemble of \(ensemble)"
            + (labelSmoothing > 0 ? ", label smoothing \(labelSmoothing)" : "")
    }
}

/// One training example: a normalised window vector with its clip's labels and weight.
public struct TrainingSample: Sendable {
    public var x: [Float]
    public var emotion: Int
    public var upset: Bool
    public var weight: Float
}

/// Trains a `Network` with mini-batch AdamW on a class-balanced cross-entropy (7 emotions) plus a
/// class-balanced binary cross-entropy (upset). Single-threaded and fully determined by the seed.
public struct Trainer {
    public let config: TrainerConfig
    public init(config: TrainerConfig) { self.config = config }

    public func fit(_ samples: [TrainingSample], seed: UInt64) -> Network {
        precondition(!samples.isEmpty)
        var rng = SplitMix64(seed: seed)
        let inputCount = samples[0].x.count
        let sizes = [inputCount] + config.hidden
        let k = Emotion.allCases.count

        // Class balance: every emotion and both upset classes carry equal total weight.
        var emotionMass = [Float](repeating: 0, count: k), upsetMass: [Float] = [0, 0]
        for s in samples { emotionMass[s.emotion] += s.weight; upsetMass[s.upset ? 1 : 0] += s.weight }
        let present = Float(emotionMass.filter { $0 > 0 }.count)
        let totalMass = emotionMass.reduce(0, +)
        let emotionWeight = emotionMass.map { $0 > 0 ? totalMass / (present * $0) : 0 }
        let upsetWeight = upsetMass.map { $0 > 0 ? totalMass / (2 * $0) : 0 }

        // He initialisation.
        func layer(_ inputs: Int, _ outputs: Int) -> Parameters {
            let scale = Float((2.0 / Double(inputs)).squareRoot())
            var w = [Float](repeating: 0, count: inputs * outputs)
            for i in w.indices { w[i] = scale * gaussian(&rng) }
            return Parameters(inputs: inputs, outputs: outputs, w: w, b: [Float](repeating: 0, count: outputs))
        }
        var hidden = (0..<config.hidden.count).map { layer(sizes[$0], sizes[$0 + 1]) }
        var head = layer(sizes.last!, k)
        var upsetHead = layer(sizes.last!, 1)

        let keep = 1 - config.dropout
        let offTarget = config.labelSmoothing / Float(k)
        let onTarget = 1 - config.labelSmoothing + offTarget
        let depth = hidden.count
        var activations = sizes.map { [Float](repeating: 0, count: $0) }
        var masks = config.hidden.map { [Float](repeating: 1, count: $0) }
        var deltas = config.hidden.map { [Float](repeating: 0, count: $0) }
        var probabilities = [Float](repeating: 0, count: k)
        var logit: [Float] = [0]
        var upsetDelta: [Float] = [0]
        // upstream[l]: gradient with respect to activations[l].
        var upstream = sizes.map { [Float](repeating: 0, count: $0) }
        var order = Array(samples.indices)
        var step: Float = 0

        for _ in 0..<config.epochs {
            order.shuffle(using: &rng)
            var batchStart = 0
            while batchStart < order.count {
                let batch = order[batchStart..<min(batchStart + config.batchSize, order.count)]
                batchStart += config.batchSize
                for l in 0..<depth { hidden[l].zeroGrad() }
                head.zeroGrad()
                upsetHead.zeroGrad()
                var batchWeight: Float = 0

                for index in batch {
                    let s = samples[index]
                    // Forward.
                    activations[0] = s.x
                    for l in 0..<depth {
                        hidden[l].forward(activations[l], into: &activations[l + 1])
                        for j in 0..<activations[l + 1].count {
                            let drop = config.dropout > 0 && Float(Double.random(in: 0..<1, using: &rng)) >= keep
                            masks[l][j] = activations[l + 1][j] > 0 && !drop ? 1 / keep : 0
                            activations[l + 1][j] *= masks[l][j]
                        }
                    }
                    head.forward(activations[depth], into: &probabilities)
                    probabilities.withUnsafeMutableBufferPointer { Softmax.inPlace($0) }
                    upsetHead.forward(activations[depth], into: &logit)
                    let q = 1 / (1 + exp(-logit[0]))

                    // Backward.
                    let we = s.weight * emotionWeight[s.emotion]
                    let wu = s.weight * upsetWeight[s.upset ? 1 : 0] * config.upsetLossWeight
                    batchWeight += s.weight
                    for c in 0..<k {
                        probabilities[c] = we * (probabilities[c] - (c == s.emotion ? onTarget : offTarget))
                    }
                    upsetDelta[0] = wu * (q - (s.upset ? 1 : 0))
                    for l in 0...depth { for j in 0..<upstream[l].count { upstream[l][j] = 0 } }
                    head.backward(input: activations[depth], delta: probabilities, inputGradient: &upstream[depth])
                    upsetHead.backward(input: activations[depth], delta: upsetDelta, inputGradient: &upstream[depth])
                    for l in stride(from: depth - 1, through: 0, by: -1) {
                        for j in 0..<upstream[l + 1].count { deltas[l][j] = upstream[l + 1][j] * masks[l][j] }
                        if l > 0 {
                            hidden[l].backward(input: activations[l], delta: deltas[l], inputGradient: &upstream[l])
                        } else {
                            hidden[l].accumulate(input: activations[l], delta: deltas[l])
                        }
                    }
                }
                step += 1
                let scale = 1 / max(batchWeight, 1e-6)
                for l in 0..<depth { hidden[l].adamStep(config, step: step, gradientScale: scale) }
                head.adamStep(config, step: step, gradientScale: scale)
                upsetHead.adamStep(config, step: step, gradientScale: scale)
            }
        }
        return Network(hidden: hidden.map(\.dense), emotionHead: head.dense, upsetHead: upsetHead.dense)
    }
}

/// A layer's weights with gradient and Adam moments.
struct Parameters {
    let inputs: Int
    let outputs: Int
    var w: [Float]
    var b: [Float]
    var gw: [Float]
    var gb: [Float]
    var mw: [Float], vw: [Float], mb: [Float], vb: [Float]

    init(inputs: Int, outputs: Int, w: [Float], b: [Float]) {
        self.inputs = inputs
        self.outputs = outputs
        self.w = w
        self.b = b
        gw = [Float](repeating: 0, count: w.count)
        gb = [Float](repeating: 0, count: b.count)
        mw = gw; vw = gw; mb = gb; vb = gb
    }

    var dense: DenseLayer { DenseLayer(inputs: inputs, outputs: outputs, weights: w, bias: b) }

    mutating func zeroGrad() {
        gw.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        gb.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
    }

    func forward(_ x: [Float], into out: inout [Float]) {
        w.withUnsafeBufferPointer { w in
            x.withUnsafeBufferPointer { x in
                out.withUnsafeMutableBufferPointer { out in
                    for o in 0..<outputs {
                        out[o] = b[o] + VectorMath.dot(w.baseAddress! + o * inputs, x.baseAddress!, inputs)
                    }
                }
            }
        }
    }

    /// Accumulates the weight gradient and adds Wᵀ·delta to `inputGradient`.
    mutating func backward(input x: [Float], delta: [Float], inputGradient: inout [Float]) {
        accumulate(input: x, delta: delta)
        w.withUnsafeBufferPointer { w in
            inputGradient.withUnsafeMutableBufferPointer { g in
                let g = g.baseAddress!
                for o in 0..<outputs where delta[o] != 0 {
                    let d = delta[o], row = w.baseAddress! + o * inputs
                    for i in 0..<inputs { g[i] += row[i] * d }
                }
            }
        }
    }

    mutating func accumulate(input x: [Float], delta: [Float]) {
        let inputs = self.inputs
        x.withUnsafeBufferPointer { x in
            let x = x.baseAddress!
            gw.withUnsafeMutableBufferPointer { g in
                for o in 0..<outputs where delta[o] != 0 {
                    let d = delta[o], row = g.baseAddress! + o * inputs
                    for i in 0..<inputs { row[i] += d * x[i] }
                }
            }
        }
        for o in 0..<outputs { gb[o] += delta[o] }
    }

    mutating func adamStep(_ c: TrainerConfig, step: Float, gradientScale: Float) {
        let beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8
        let correction1 = 1 - pow(beta1, step), correction2 = 1 - pow(beta2, step)
        let lr = c.learningRate
        let count = w.count, decay = c.weightDecay
        w.withUnsafeMutableBufferPointer { w in
            gw.withUnsafeBufferPointer { gw in
                mw.withUnsafeMutableBufferPointer { mw in
                    vw.withUnsafeMutableBufferPointer { vw in
                        for i in 0..<count {
                            let g = gw[i] * gradientScale
                            mw[i] = beta1 * mw[i] + (1 - beta1) * g
                            vw[i] = beta2 * vw[i] + (1 - beta2) * g * g
                            w[i] -=
                                lr * ((mw[i] / correction1) / ((vw[i] / correction2).squareRoot() + eps) + decay * w[i])
                        }
                    }
                }
            }
        }
        for i in b.indices {
            let g = gb[i] * gradientScale
            mb[i] = beta1 * mb[i] + (1 - beta1) * g
            vb[i] = beta2 * vb[i] + (1 - beta2) * g * g
            b[i] -= lr * (mb[i] / correction1) / ((vb[i] / correction2).squareRoot() + eps)
        }
    }
}

/// Box-Muller from the seeded generator.
func gaussian(_ rng: inout SplitMix64) -> Float {
    let u1 = max(Double.random(in: 0..<1, using: &rng), 1e-12)
    let u2 = Double.random(in: 0..<1, using: &rng)
    return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
}
