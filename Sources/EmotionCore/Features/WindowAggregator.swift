/// One analysis window: what the model reads, offline and live alike.
public struct WindowFeatures: Sendable {
    /// Window span in media seconds.
    public var start: Double
    public var end: Double
    /// The same span in frames from the stream's start (`startFrame ..< endFrame`).
    public var startFrame: Int
    public var endFrame: Int
    /// Fraction of the window's frames that the speech gate passed.
    public var speechFraction: Double
    public var speechSeconds: Double
    /// Median level of the window's speech frames (dB re full scale): depends on the line's gain, so the
    /// model sees it only relative to the leg's own running level (`LegBaseline`).
    public var levelDB: Float
    /// The model's input (`WindowVector.names`), or nil when the window holds too little speech for a verdict.
    public var vector: [Float]?

    public init(
        start: Double, end: Double, speechFraction: Double, speechSeconds: Double, levelDB: Float = 0,
        vector: [Float]?, startFrame: Int = 0, endFrame: Int = 0
    ) {
        self.start = start
        self.end = end
        self.startFrame = startFrame
        self.endFrame = endFrame
        self.speechFraction = speechFraction
        self.speechSeconds = speechSeconds
        self.levelDB = levelDB
        self.vector = vector
    }
}

/// Turns a stream of frames into sliding windows (default 3 s every 1 s) of statistics over speech frames.
///
/// Frames are kept in a ring of one window's length; statistics are computed once per hop, so the
/// per-frame cost is a copy. Silence never dilutes a window: only speech frames enter its statistics.
public final class WindowAggregator {
    public let config: WindowConfig
    public let frameStep: Double
    private let framesPerWindow: Int
    private let framesPerHop: Int
    private var gate: SpeechGate
    private var judged: Bool?
    /// The speech gate's verdict on the frame `add` took last.
    public private(set) var lastFrameWasSpeech = false

    // Raw storage, written once per frame: arrays in a class cost an exclusivity and a uniqueness check
    // on every write.
    private let ring: UnsafeMutablePointer<Float>
    private let speechFlags: UnsafeMutablePointer<Bool>
    private let frameIndices: UnsafeMutablePointer<Int>
    private var framesSeen = 0
    private var windowsEmitted = 0
    private var nextWindowEndFrame: Int
    private let statistics: WindowVector
    private var levels: [Float]

    public init(config: WindowConfig = WindowConfig(), frameStep: Double) throws(FeatureConfig.Invalid) {
        try config.validate()
        self.config = config
        self.frameStep = frameStep
        framesPerWindow = max(1, Int((config.length / frameStep).rounded()))
        framesPerHop = max(1, Int((config.hop / frameStep).rounded()))
        gate = SpeechGate(config: config, frameStep: frameStep)
        ring = .allocate(capacity: framesPerWindow * FrameLayout.count)
        ring.initialize(repeating: 0, count: framesPerWindow * FrameLayout.count)
        speechFlags = .allocate(capacity: framesPerWindow)
        speechFlags.initialize(repeating: false, count: framesPerWindow)
        frameIndices = .allocate(capacity: framesPerWindow)
        frameIndices.initialize(repeating: 0, count: framesPerWindow)
        nextWindowEndFrame = framesPerWindow
        statistics = WindowVector(capacity: framesPerWindow)
        levels = []
        levels.reserveCapacity(framesPerWindow)
    }

    deinit {
        ring.deallocate()
        speechFlags.deallocate()
        frameIndices.deallocate()
    }

    /// Runs the speech gate on the next frame's level before the frame is analysed (the extractor
    /// asks, so that silent frames can skip the analysis windows never read); `add` then uses this verdict.
    public func judge(energyDB: Float) -> Bool {
        let speech = gate.isSpeech(energyDB: energyDB)
        judged = speech
        return speech
    }

    public func reset() {
        judged = nil
        gate = SpeechGate(config: config, frameStep: frameStep)
        framesSeen = 0
        windowsEmitted = 0
        nextWindowEndFrame = framesPerWindow
    }

    /// The index of the frame that completes the next window.
    public var nextWindowLastFrame: Int { nextWindowEndFrame - 1 }

    /// Adds one frame; returns the window it completes, if any.
    ///
    /// A window is handed out as soon as its last frame is in, not when the next frame arrives:
    /// that keeps the live path's event latency to the frame's own look-ahead (half an FFT frame).
    public func add(_ frame: FrameView) -> WindowFeatures? {
        let slot = frame.index % framesPerWindow
        let isSpeech = judged ?? gate.isSpeech(energyDB: frame.energyDB)
        judged = nil
        lastFrameWasSpeech = isSpeech
        if let values = frame.values.baseAddress {
            (ring + slot * FrameLayout.count).update(from: values, count: FrameLayout.count)
        }
        speechFlags[slot] = isSpeech
        frameIndices[slot] = frame.index
        framesSeen = frame.index + 1
        guard framesSeen >= nextWindowEndFrame else { return nil }
        let completed = makeWindow(endFrame: nextWindowEndFrame)
        nextWindowEndFrame += framesPerHop
        return completed
    }

    /// Closes the stream: the last full window if one is due, or a shorter one when none came out at all
    /// (a clip shorter than the window still gets a verdict).
    public func finish() -> WindowFeatures? {
        if framesSeen >= nextWindowEndFrame {
            let w = makeWindow(endFrame: nextWindowEndFrame)
            nextWindowEndFrame += framesPerHop
            return w
        }
        if windowsEmitted == 0, framesSeen > 0 {
            return makeWindow(endFrame: framesSeen)
        }
        return nil
    }

    /// The speech frames' level at rank count/2 (the upper median), by selection in a reused buffer.
    private func medianSpeechLevel(_ slots: [Int]) -> Float {
        levels.removeAll(keepingCapacity: true)
        for slot in slots { levels.append(ring[slot * FrameLayout.count + FrameLayout.energyDB]) }
        let rank = levels.count / 2
        return levels.withUnsafeMutableBufferPointer { v in
            WindowVector.select(v, rank: rank, from: 0)
            return v[rank]
        }
    }

    private func makeWindow(endFrame: Int) -> WindowFeatures {
        windowsEmitted += 1
        let startFrame = max(0, endFrame - framesPerWindow)
        var slots: [Int] = []
        slots.reserveCapacity(endFrame - startFrame)
        var speechSlots: [Int] = []
        var speechTimes: [Float] = []
        var bursts = 0
        var previousWasSpeech = false
        for index in startFrame..<endFrame {
            let slot = index % framesPerWindow
            guard frameIndices[slot] == index else { continue }
            slots.append(slot)
            let speech = speechFlags[slot]
            if speech { speechSlots.append(slot); speechTimes.append(Float(Double(index) * frameStep)) }
            if speech, !previousWasSpeech { bursts += 1 }
            previousWasSpeech = speech
        }
        let total = max(1, slots.count)
        let speechSeconds = Double(speechSlots.count) * frameStep
        var vector: [Float]?
        var level: Float = 0
        if speechSeconds >= config.minimumSpeech, speechSlots.count >= 3 {
            level = medianSpeechLevel(speechSlots)
            vector = statistics.compute(
                rows: UnsafeBufferPointer(start: ring, count: framesPerWindow * FrameLayout.count), slots: speechSlots,
                times: speechTimes, bursts: bursts, speechSeconds: speechSeconds)
        }
        return WindowFeatures(
            start: Double(startFrame) * frameStep, end: Double(endFrame) * frameStep,
            speechFraction: Double(speechSlots.count) / Double(total), speechSeconds: speechSeconds,
            levelDB: level, vector: vector, startFrame: startFrame, endFrame: endFrame)
    }
}
