import COpenBLAS
import Foundation

/// One leg's run of a `FrameNet`: frames go in one at a time, the convolutions run on the new frames only
/// (im2col and one OpenBLAS GEMM per block, at most `chunk` outputs at a time), and a window's verdict is
/// attentive pooling over outputs already computed. All buffers are allocated once, at creation.
///
/// Exactly what training computes: the history starts as `context` zero frames, each block's output `j`
/// reads its inputs up to `stride * j + stride - 1`, and a window pools the outputs whose frames both lie
/// in it (the golden vectors from `frame_model.py golden` check this).
public final class FrameNetStream {
    public let net: FrameNet
    private var inputs: FrameNetInputs

    /// Most outputs per block per GEMM; bounds the rings below.
    static let chunk = 32

    private struct Ring {
        var data: UnsafeMutablePointer<Float>
        let capacity: Int
        let width: Int
        /// Rows written so far (row `i` lives at `i % capacity`).
        var count = 0
        @inline(__always) func row(_ i: Int) -> UnsafeMutablePointer<Float> { data + (i % capacity) * width }
    }

    /// Ring 0 holds the standardised input frames; ring `b + 1` the outputs of block `b`.
    private var rings: [Ring]
    private var speech: UnsafeMutablePointer<Bool>
    private let speechCapacity: Int
    /// Attention logit of each top-level output, and whether either of its frames was speech.
    private var logits: UnsafeMutablePointer<Float>
    private var pairSpeech: UnsafeMutablePointer<Bool>
    private let topCapacity: Int

    // GEMM scratch.
    /// Floats of GEMM scratch one chunk needs (columns, then product), taken from the thread.
    private let scratchColumns: Int
    private let scratchCount: Int
    private let pooled: UnsafeMutablePointer<Float>
    private let hiddenOut: UnsafeMutablePointer<Float>
    private let weights: UnsafeMutablePointer<Float>
    /// Frames pushed since the leg began, counting the zero frames of the primed history.
    private var framesIn = 0

    public init(net: FrameNet) {
        _ = blasSingleThreaded
        self.net = net
        inputs = FrameNetInputs(
            mean: net.inputMean.values, scale: net.inputScale.values, pitchPrior: net.pitchPrior,
            channelPrior: net.channelPrior, melPrior: net.melPrior ?? [])
        let chunk = Self.chunk
        let stride0 = net.blocks[0].stride
        var rings: [Ring] = []
        // Input ring: one chunk of new frames, the first block's look-back, and a frame waiting for its pair.
        let inputCapacity = chunk * stride0 + net.blocks[0].receptiveSpan + stride0
        rings.append(
            Ring(
                data: .allocate(capacity: inputCapacity * net.inputs.count), capacity: inputCapacity,
                width: net.inputs.count))
        let windowOutputs = net.windowFrames / net.totalStride
        for (b, block) in net.blocks.enumerated() {
            let isTop = b == net.blocks.count - 1
            let lookBack = b + 1 < net.blocks.count ? net.blocks[b + 1].receptiveSpan : 0
            let capacity = isTop ? windowOutputs + chunk + 1 : chunk + lookBack + 1
            rings.append(
                Ring(data: .allocate(capacity: capacity * block.outputs), capacity: capacity, width: block.outputs))
        }
        self.rings = rings
        speechCapacity = inputCapacity
        speech = .allocate(capacity: speechCapacity)
        topCapacity = rings.last!.capacity
        logits = .allocate(capacity: topCapacity)
        pairSpeech = .allocate(capacity: topCapacity)
        let widestK = net.blocks.map { $0.kernel * $0.inputs }.max()!
        let widestOut = max(net.blocks.map(\.outputs).max()!, net.attention.outputs)
        scratchColumns = chunk * max(widestK, net.channels)
        scratchCount = scratchColumns + chunk * widestOut
        pooled = .allocate(capacity: 2 * net.channels)
        hiddenOut = .allocate(capacity: max(net.hidden.outputs, Emotion.allCases.count + 1))
        weights = .allocate(capacity: windowOutputs + 1)
        reset()
    }

    deinit {
        for r in rings { r.data.deallocate() }
        speech.deallocate()
        logits.deallocate()
        pairSpeech.deallocate()
        pooled.deallocate()
        hiddenOut.deallocate()
        weights.deallocate()
    }

    /// A new leg: warm-start inputs and a history of `context` zero frames.
    public func reset() {
        inputs.reset()
        framesIn = 0
        scoredTop = 0
        for i in rings.indices { rings[i].count = 0 }
        for _ in 0..<net.context { append(nil, speech: false) }
    }

    /// The leg's next frame (`FrameLayout` values, fully analysed), its mel bands (for a network that reads
    /// them; nil for a frame the gate turned down) and the speech gate's verdict on it.
    public func push(
        frame: UnsafeBufferPointer<Float>, melBandsDB: UnsafeBufferPointer<Float>? = nil, speech isSpeech: Bool
    ) {
        append(frame, melBandsDB: melBandsDB, speech: isSpeech)
    }

    private func append(
        _ frame: UnsafeBufferPointer<Float>?, melBandsDB: UnsafeBufferPointer<Float>? = nil, speech isSpeech: Bool
    ) {
        let row = rings[0].row(framesIn)
        if let frame {
            inputs.build(frame: frame, melBandsDB: melBandsDB, speech: isSpeech, into: row)
        } else {
            row.update(repeating: 0, count: rings[0].width)
        }
        speech[framesIn % speechCapacity] = isSpeech
        framesIn += 1
        rings[0].count = framesIn
        if framesIn - rings[1].count * net.blocks[0].stride >= Self.chunk * net.blocks[0].stride { advance() }
    }

    /// Runs every block over the outputs its inputs now allow, a chunk at a time, with the thread's scratch.
    private func advance() {
        let columns = ThreadScratch.floats(scratchCount)
        var me = self
        withUnsafeMutablePointer(to: &me) {
            Self.advance(
                UnsafeBufferPointer(start: $0, count: 1), columns: columns, product: columns + scratchColumns,
                rows: Self.chunk)
        }
    }

    /// New outputs block `b` can compute now (at most a chunk).
    @inline(__always)
    private func due(_ b: Int) -> Int {
        let source = rings[b].count
        let available = b == 0 ? source / net.blocks[0].stride : source
        return min(Self.chunk, available - rings[b + 1].count)
    }

    /// Brings every stream's blocks up to date, several legs' new outputs in one GEMM per block: `columns`
    /// and `product` hold `rows` rows (at least a chunk) of the widest block.
    static func advance(
        _ streams: UnsafeBufferPointer<FrameNetStream>, columns: UnsafeMutablePointer<Float>,
        product: UnsafeMutablePointer<Float>, rows: Int
    ) {
        guard let net = streams.first?.net else { return }
        for b in net.blocks.indices {
            let block = net.blocks[b]
            let k = block.kernel * block.inputs
            inBatches(
                streams, rows: rows, due: { $0.due(b) },
                gather: { stream, n, row in stream.gather(block, b, count: n, into: columns + row * k) },
                flush: { range, used in
                    multiply(block, streams, range, columns: columns, product: product, rows: used)
                })
        }
        // Attention logits and speech pairs of the new top-level outputs, the attention layer batched too.
        let c = net.channels
        inBatches(
            streams, rows: rows, due: { min(chunk, $0.rings[$0.rings.count - 1].count - $0.scoredTop) },
            gather: { stream, n, row in
                let top = stream.rings[stream.rings.count - 1]
                for r in 0..<n { (columns + (row + r) * c).update(from: top.row(stream.scoredTop + r), count: c) }
            },
            flush: { range, used in attention(net, streams, range, columns: columns, product: product, rows: used) })
    }

    /// The one batching loop: each stream's due rows go into the scratch one stream after another, with a
    /// flush (one GEMM, then each stream finishing its `batchRows`) whenever the next would not fit and at
    /// the end; rounds repeat while a stream is still more than a chunk behind.
    private static func inBatches(
        _ streams: UnsafeBufferPointer<FrameNetStream>, rows: Int, due: (FrameNetStream) -> Int,
        gather: (FrameNetStream, _ count: Int, _ row: Int) -> Void, flush: (Range<Int>, _ rows: Int) -> Void
    ) {
        var more = true
        while more {
            more = false
            var used = 0
            var segment = 0
            for i in 0..<streams.count {
                let stream = streams[i]
                let n = due(stream)
                stream.batchRows = n
                guard n > 0 else { continue }
                if used + n > rows {
                    flush(segment..<i, used)
                    used = 0
                    segment = i
                }
                gather(stream, n, used)
                used += n
            }
            flush(segment..<streams.count, used)
            for stream in streams where due(stream) > 0 { more = true }
        }
    }

    /// One GEMM over the rows the streams gathered, then each stream's rows finished into its ring.
    private static func multiply(
        _ block: FrameNet.Block, _ streams: UnsafeBufferPointer<FrameNetStream>, _ range: Range<Int>,
        columns: UnsafeMutablePointer<Float>, product: UnsafeMutablePointer<Float>, rows: Int
    ) {
        guard rows > 0 else { return }
        let k = block.kernel * block.inputs
        block.weights.values.withUnsafeBufferPointer { w in
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(block.outputs), Int32(k), 1, columns,
                Int32(k), w.baseAddress, Int32(k), 0, product, Int32(block.outputs))
        }
        var row = 0
        for i in range where streams[i].batchRows > 0 {
            let stream = streams[i]
            stream.finish(block, rows: product + row * block.outputs)
            row += stream.batchRows
        }
    }
    /// Rows this stream put in the batch being multiplied.
    private var batchRows = 0
    /// The block being batched (its target ring is `batchBlock + 1`).
    private var batchBlock = 0

    /// im2col of block `b`'s next `n` outputs from its source ring.
    private func gather(_ block: FrameNet.Block, _ b: Int, count n: Int, into columns: UnsafeMutablePointer<Float>) {
        let cin = block.inputs, k = block.kernel * cin
        let source = rings[b], first = rings[b + 1].count
        batchBlock = b
        for i in 0..<n {
            let j = first + i
            let column = columns + i * k
            for tap in 0..<block.kernel {
                let index = block.stride * j + tap * block.dilation - block.leftPad
                if index < 0 {
                    (column + tap * cin).update(repeating: 0, count: cin)
                } else {
                    (column + tap * cin).update(from: source.row(index), count: cin)
                }
            }
        }
    }

    /// Bias, LayerNorm, ReLU and residual on this stream's `batchRows` GEMM rows, into its target ring.
    private func finish(_ block: FrameNet.Block, rows product: UnsafeMutablePointer<Float>) {
        let cout = block.outputs
        let source = rings[batchBlock], target = batchBlock + 1, first = rings[target].count
        block.bias.values.withUnsafeBufferPointer { bias in
            block.normScale.values.withUnsafeBufferPointer { scale in
                block.normShift.values.withUnsafeBufferPointer { shift in
                    let bias = bias.baseAddress!, scale = scale.baseAddress!, shift = shift.baseAddress!
                    for i in 0..<batchRows {
                        // The sums in eight lanes (VectorMath): one running sum per row was a chain of
                        // dependent adds, most of this function's time.
                        let y = product + i * cout
                        VectorMath.add(bias, into: y, cout)
                        let mean = VectorMath.sum(y, cout) / Float(cout)
                        for o in 0..<cout { y[o] -= mean }
                        let variance = VectorMath.dot(y, y, cout)
                        let inverse = 1 / (variance / Float(cout) + block.normEpsilon).squareRoot()
                        let out = rings[target].row(first + i)
                        for o in 0..<cout { out[o] = max(0, y[o] * inverse * scale[o] + shift[o]) }
                        if block.residual { VectorMath.add(source.row(first + i), into: out, cout) }
                    }
                }
            }
        }
        rings[target].count = first + batchRows
    }

    private static func attention(
        _ net: FrameNet, _ streams: UnsafeBufferPointer<FrameNetStream>, _ range: Range<Int>,
        columns: UnsafeMutablePointer<Float>, product: UnsafeMutablePointer<Float>, rows: Int
    ) {
        guard rows > 0 else { return }
        dense(net.attention, rows: rows, input: columns, output: product)
        var row = 0
        for i in range where streams[i].batchRows > 0 {
            streams[i].finishAttention(product + row * net.attention.outputs)
            row += streams[i].batchRows
        }
    }

    private func finishAttention(_ product: UnsafeMutablePointer<Float>) {
        let a = net.attention.outputs, stride = net.totalStride
        let bias = net.attentionScore.bias.values[0]
        net.attentionScore.weights.values.withUnsafeBufferPointer { w in
            for i in 0..<batchRows {
                let j = scoredTop + i
                let s = bias + VectorMath.tanhDot(w.baseAddress!, product + i * a, a)
                logits[j % topCapacity] = s
                var anySpeech = false
                for f in 0..<stride { anySpeech = anySpeech || speech[(j * stride + f) % speechCapacity] }
                pairSpeech[j % topCapacity] = anySpeech
            }
        }
        scoredTop += batchRows
    }
    private var scoredTop = 0

    /// `rows` inputs of `layer.inputs` floats (row-major) through a dense layer, without activation.
    private static func dense(
        _ layer: DenseLayer, rows: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>
    ) {
        layer.weights.values.withUnsafeBufferPointer { w in
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(layer.outputs), Int32(layer.inputs), 1,
                input, Int32(layer.inputs), w.baseAddress, Int32(layer.inputs), 0, output, Int32(layer.outputs))
        }
        let bias = layer.bias.values
        for r in 0..<rows { for o in 0..<layer.outputs { output[r * layer.outputs + o] += bias[o] } }
    }

    /// The verdict on the window of the leg's frames `startFrame ..< endFrame` (frames counted from the leg's
    /// start; every frame before `endFrame` pushed): 7 emotion probabilities into `probabilities`, and the
    /// upset head's probability. Nil when the window is no longer held (it must end at the newest frame).
    public func score(startFrame: Int, endFrame: Int, probabilities: UnsafeMutablePointer<Float>) -> Float? {
        advance()
        let stride = net.totalStride
        let top = rings.count - 1
        let first = (net.context + startFrame) / stride
        let n = (endFrame - startFrame) / stride
        guard n > 0, n <= net.windowFrames / stride, (startFrame + net.context) % stride == 0,
            first + n <= rings[top].count,
            first >= rings[top].count - topCapacity
        else { return nil }
        var speechCount = 0
        for i in 0..<n where pairSpeech[(first + i) % topCapacity] { speechCount += 1 }
        // Training's rule: a window with under 5 speech outputs pools over all of them.
        let all = speechCount < 5
        var peak = -Float.infinity
        for i in 0..<n {
            let a = all || pairSpeech[(first + i) % topCapacity] ? logits[(first + i) % topCapacity] : -1e4
            weights[i] = a
            peak = max(peak, a)
        }
        var total: Float = 0
        for i in 0..<n {
            weights[i] = exp(weights[i] - peak)
            total += weights[i]
        }
        let c = net.channels
        pooled.update(repeating: 0, count: 2 * c)
        for i in 0..<n {
            let w = weights[i] / total
            let h = rings[top].row(first + i)
            for o in 0..<c {
                pooled[o] += w * h[o]
                pooled[c + o] += w * h[o] * h[o]
            }
        }
        for o in 0..<c { pooled[c + o] = max(pooled[c + o] - pooled[o] * pooled[o], 1e-5).squareRoot() }
        net.hidden.apply(pooled, hiddenOut)
        for o in 0..<net.hidden.outputs { hiddenOut[o] = max(0, hiddenOut[o]) }
        net.emotionHead.apply(hiddenOut, probabilities)
        Softmax.inPlace(UnsafeMutableBufferPointer(start: probabilities, count: Emotion.allCases.count))
        var logit: Float = 0
        net.upsetHead.apply(hiddenOut, &logit)
        return sigmoid(logit)
    }
}

/// OpenBLAS runs single-threaded: legs run in parallel on the worker threads already.
private let blasSingleThreaded: Void = openblas_set_num_threads(1)

/// Scratch for running many legs' frame networks together (one per worker thread): `FrameNetStream`s of one
/// network, brought up to date with one GEMM per block for all of them.
public final class FrameNetBatch {
    public let rows: Int
    private let columns: UnsafeMutablePointer<Float>
    private let product: UnsafeMutablePointer<Float>

    /// Room for `rows` GEMM rows of `net`'s widest block.
    public init(net: FrameNet, rows: Int = 1024) {
        self.rows = max(rows, FrameNetStream.chunk)
        let widestK = net.blocks.map { $0.kernel * $0.inputs }.max() ?? 1
        let widestOut = max(net.blocks.map(\.outputs).max() ?? 1, net.attention.outputs)
        columns = .allocate(capacity: self.rows * max(widestK, net.channels))
        product = .allocate(capacity: self.rows * widestOut)
    }

    deinit {
        columns.deallocate()
        product.deallocate()
    }

    /// Every stream's new frames through the convolutions (distinct streams of one network).
    public func advance(_ streams: [FrameNetStream]) {
        streams.withUnsafeBufferPointer {
            FrameNetStream.advance($0, columns: columns, product: product, rows: rows)
        }
    }
}
