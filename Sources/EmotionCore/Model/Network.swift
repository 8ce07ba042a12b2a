import Foundation

/// A fully connected layer: `outputs x inputs` weights, row-major.
public struct DenseLayer: Codable, Sendable, Equatable {
    public var inputs: Int
    public var outputs: Int
    public var weights: PackedFloats
    public var bias: PackedFloats

    public init(inputs: Int, outputs: Int, weights: [Float], bias: [Float]) {
        precondition(weights.count == inputs * outputs && bias.count == outputs)
        self.inputs = inputs
        self.outputs = outputs
        self.weights = PackedFloats(weights)
        self.bias = PackedFloats(bias)
    }

    /// out = W x + b
    @inline(__always)
    func apply(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
        weights.values.withUnsafeBufferPointer { w in
            bias.values.withUnsafeBufferPointer { b in
                for o in 0..<outputs { out[o] = b[o] + VectorMath.dot(w.baseAddress! + o * inputs, x, inputs) }
            }
        }
    }
}

/// A small multi-task network: ReLU hidden layers shared by a 7-way emotion head and an upset head.
public struct Network: Codable, Sendable, Equatable {
    public var hidden: [DenseLayer]
    public var emotionHead: DenseLayer
    public var upsetHead: DenseLayer

    public init(hidden: [DenseLayer], emotionHead: DenseLayer, upsetHead: DenseLayer) {
        self.hidden = hidden
        self.emotionHead = emotionHead
        self.upsetHead = upsetHead
    }

    var widestLayer: Int { max(hidden.map(\.outputs).max() ?? 0, hidden.first?.inputs ?? 0, emotionHead.outputs) }

    /// Writes 7 emotion probabilities and returns the upset probability.
    /// `a` and `b` are scratch buffers of `widestLayer` floats; `x` is the normalised input.
    func forward(
        _ x: UnsafePointer<Float>, scratchA a: UnsafeMutablePointer<Float>, scratchB b: UnsafeMutablePointer<Float>,
        emotions: UnsafeMutablePointer<Float>
    ) -> Float {
        var input = x
        var output = a
        var spare = b
        for layer in hidden {
            layer.apply(input, output)
            for i in 0..<layer.outputs where output[i] < 0 { output[i] = 0 }
            input = UnsafePointer(output)
            swap(&output, &spare)
        }
        emotionHead.apply(input, emotions)
        Softmax.inPlace(UnsafeMutableBufferPointer(start: emotions, count: emotionHead.outputs))
        var logit: Float = 0
        upsetHead.apply(input, &logit)
        return sigmoid(logit)
    }
}

/// The one softmax, for inference and training alike.
public enum Softmax {
    @inlinable
    public static func inPlace(_ v: UnsafeMutableBufferPointer<Float>) {
        var m = -Float.infinity
        for x in v { m = max(m, x) }
        var s: Float = 0
        for i in v.indices {
            v[i] = exp(v[i] - m)
            s += v[i]
        }
        for i in v.indices { v[i] /= s }
    }
}

@inline(__always)
func sigmoid(_ x: Float) -> Float { 1 / (1 + exp(-x)) }
