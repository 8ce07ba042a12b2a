@testable import EmotionCore
import EmotionTestSupport
@testable import EmotionTraining
import Foundation
import Testing

@Suite("call-level figures, calibration and the policy search")
struct CallLevelTests {
    /// One window a second (3 s long) with `speech` seconds of speech and the raw score `upset(t)` at its end.
    static func call(
        kind: SimulatedCall.Kind, seconds: Int, stretches: [(Double, Double)], upset: (Double) -> Float
    ) -> ScoredCall {
        let windows = (3...seconds).map { end in
            let e = Double(end)
            let p = upset(e)
            let q = Float(1 - p) / 3
            return ScoredWindow(
                start: e - 3, end: e, speechSeconds: 2, rawUpset: p,
                probabilities: [p / 4, p / 4, p / 4, q, q, p / 4, q])
        }
        return ScoredCall(
            call: SimulatedCall(
                kind: kind, speaker: "x/1", upsetStretches: stretches.map { (start: $0.0, end: $0.1) },
                duration: Double(seconds), channel: "pcmu"),
            windows: windows)
    }

    /// Unsmoothed: upset from the first window at 0.7, calm again below 0.5.
    static func unsmoothedPolicy() -> LegPolicy {
        var policy = LegPolicy()
        policy.smoothing = 1
        policy.enterUpset = 0.7
        policy.exitUpset = 0.5
        return policy
    }

    @Test("an upset stretch is caught with its delay; calm around it is not shown upset; calm calls count apart")
    func replay() {
        let policy = Self.unsmoothedPolicy()
        let stretchCall = Self.call(kind: .calmUpsetCalm, seconds: 60, stretches: [(20, 40)]) {
            $0 > 24 && $0 <= 41 ? 0.9 : 0.1
        }
        let f = CallReplay.figures(stretchCall, policy: policy, calibration: .identity)
        #expect(f.upsetStretches == 1 && f.stretchesCaught == 1)
        #expect(f.latencies == [5])
        #expect(f.calmShownUpsetSeconds == 0)
        #expect(f.calmSpeechSeconds > 0)
        #expect(f.falseEscalations == 0)
        // Windows wholly inside the stretch: 23...40 end at 23-40 s; shown upset from the window ending at 25.
        #expect(f.upsetSpeechSeconds > 0 && f.upsetShownUpsetShare > 0.8, "\(f.upsetShownUpsetShare)")
        #expect(f.stateChanges == 2, "into upset and back")

        // A calm call that the model hears as upset for 30 s: flagged, its calm speech shown upset, and an
        // escalation that is false.
        let falseAlarm = Self.call(kind: .calm, seconds: 60, stretches: []) { $0 > 10 && $0 <= 40 ? 0.95 : 0.1 }
        let g = CallReplay.figures(falseAlarm, policy: policy, calibration: .identity)
        #expect(g.calmCalls == 1 && g.calmCallsFlagged == 1)
        #expect(g.calmShownUpsetShare > 0.4 && g.calmShownUpsetShare < 0.6, "\(g.calmShownUpsetShare)")
        #expect(g.falseEscalations == 1)
        #expect(g.falseEscalationsPerCalmHour > 0)

        // The same call under a calibration that pulls 0.95 below the threshold is not flagged.
        let calmer = CallReplay.figures(
            falseAlarm, policy: policy, calibration: UpsetCalibration(slope: 1, intercept: -3))
        #expect(calmer.calmCallsFlagged == 0 && calmer.falseEscalations == 0)
        let both = f + g
        #expect(both.calls == 2 && both.upsetStretches == 1 && both.calmCalls == 1)
    }

    @Test(
        "an escalation belongs to a stretch only when its speech raised it: calm speech that tips over as one begins is false"
    )
    func escalationAttribution() {
        var policy = Self.unsmoothedPolicy()
        policy.escalateUpsetSeconds = 12
        // Each window adds 2/3 s of new speech: 12 s is 18 windows.
        // Calm speech heard as upset from 6 s: the escalation comes at 24 s, two windows into the stretch
        // (22-42 s) but resting on 16 windows of calm speech.
        let calmRaised = Self.call(kind: .calmUpsetCalm, seconds: 60, stretches: [(22, 42)]) { $0 >= 6 ? 0.95 : 0.1 }
        let a = CallReplay.figures(calmRaised, policy: policy, calibration: .identity)
        #expect(a.falseEscalations == 1 && a.stretchEscalations == 0)
        // Calm speech heard as calm: the stretch's own windows raise it.
        let stretchRaised = Self.call(kind: .calmUpsetCalm, seconds: 60, stretches: [(22, 42)]) {
            $0 > 22 && $0 <= 44 ? 0.95 : 0.1
        }
        let b = CallReplay.figures(stretchRaised, policy: policy, calibration: .identity)
        #expect(b.falseEscalations == 0 && b.stretchEscalations == 1)
        // 18 windows of the stretch's speech from its onset at 22 s: raised about 18 s in.
        #expect(a.escalationLatencies.isEmpty && a.medianEscalationLatency == nil)
        #expect(b.escalationLatencies.count == 1)
        #expect((17...20).contains(b.medianEscalationLatency ?? 0), "\(b.escalationLatencies)")
    }

    @Test("the policy search keeps to the false-alarm budget, then catches the most, then flickers least")
    func search() {
        var within = CallFigures()
        within.calmSpeechSeconds = 100
        within.calmShownUpsetSeconds = 5
        within.upsetStretches = 10
        within.stretchesCaught = 7
        var greedy = within
        greedy.calmShownUpsetSeconds = 30
        greedy.stretchesCaught = 10
        var better = within
        better.stretchesCaught = 9
        var escalating = better
        escalating.stretchesCaught = 10
        escalating.falseEscalations = 1
        let candidates = (0..<4).map {
            DecisionTuning(smoothing: 1, enterUpset: 0.5 + Double($0) / 10, exitUpset: 0.4, chosenFor: "")
        }
        #expect(PolicySearch.choose([within, greedy, better, escalating], candidates: candidates, budget: 0.1) == 2)
        // Nothing within the budget: the fewest false alarms.
        #expect(PolicySearch.choose([greedy, greedy, within], candidates: candidates, budget: 0.01) == 2)
        // As many caught: the steadier state wins over the quicker one.
        var flickering = better
        flickering.stateChanges = 40
        flickering.latencies = [2]
        var steady = better
        steady.stateChanges = 12
        steady.latencies = [6]
        #expect(PolicySearch.choose([flickering, steady], candidates: candidates, budget: 0.1) == 1)
        // As many caught: the policy that escalates more of them wins over the steadier one.
        var escalatesStretches = flickering
        escalatesStretches.stretchEscalations = 3
        #expect(PolicySearch.choose([steady, escalatesStretches], candidates: candidates, budget: 0.1) == 1)
    }

    @Test("an escalation rule is chosen only if the same rule escalating 4 s sooner raises no false escalation either")
    func escalationMargin() {
        var clean = CallFigures()
        clean.calmSpeechSeconds = 100
        clean.upsetStretches = 10
        clean.stretchesCaught = 8
        var escalates = clean
        escalates.stretchEscalations = 3
        var falseAlarm = clean
        falseAlarm.falseEscalations = 1
        let rules = [8.0, 12, 16].map {
            DecisionTuning(
                smoothing: 1, enterUpset: 0.7, exitUpset: 0.6, escalateUpset: 0.95, escalateUpsetSeconds: $0,
                escalateWithinSeconds: 60, chosenFor: "")
        }
        // 12 s escalates the most stretches with no false escalation, but 8 s raises one: 16 s is chosen.
        let figures = [falseAlarm, escalates, clean]
        #expect(PolicySearch.choose(figures, candidates: rules, budget: 0.1, escalationMarginSeconds: 4) == 2)
        #expect(PolicySearch.choose(figures, candidates: rules, budget: 0.1) == 1)
        // Nothing qualifies (all over the budget but one that escalates falsely): the surest escalation wins
        // among the ones within the budget, not the quickest rule.
        var over = clean
        over.calmShownUpsetSeconds = 50
        var falseWithin = escalates
        falseWithin.falseEscalations = 2
        #expect(
            PolicySearch.choose(
                [falseWithin, falseAlarm, over], candidates: rules, budget: 0.1, escalationMarginSeconds: 4)
                == 1)
        // 8 s has no 4 s twin among these: it cannot be chosen with the margin, even when clean.
        #expect(
            PolicySearch.choose(
                [escalates, clean], candidates: Array(rules[0...1]), budget: 0.1,
                escalationMarginSeconds: 4) == 1)
    }

    @Test(
        "the search's escalation levels: only above the entry threshold, the plain rule for every entry, each with every duration in every span longer than it"
    )
    func escalationLevels() {
        let all = PolicySearch.candidates
        #expect(all.allSatisfy { c in c.escalateUpset.map { $0 > c.enterUpset } ?? true })
        let durations = PolicySearch.escalateSeconds.map { s in PolicySearch.escalateSpans.filter { $0 > s }.count }
        let pairs = durations.reduce(0, +)
        #expect(
            all.filter { $0.escalateUpset == nil }.count == PolicySearch.smoothings.count
                * PolicySearch.enters.count * PolicySearch.gaps.count * PolicySearch.enterWindows.count * pairs)
        #expect(
            all.contains {
                $0.enterUpset == 0.5 && $0.escalateUpset == 0.975 && $0.escalateUpsetSeconds == 8
                    && $0.escalateWithinSeconds == 60
            })
        #expect(Set(all.compactMap(\.escalateUpsetSeconds)) == Set(PolicySearch.escalateSeconds))
        #expect(Set(all.compactMap(\.escalateWithinSeconds)) == Set(PolicySearch.escalateSpans))
        #expect(all.allSatisfy { ($0.escalateWithinSeconds ?? 60) > ($0.escalateUpsetSeconds ?? 20) })
        #expect(all.count == 10_176 / 4 * pairs)
        // Hysteresis: no rule leaves `upset` within 0.1 of where it entered (a state that flaps is not acted on).
        #expect(all.allSatisfy { $0.enterUpset - $0.exitUpset >= 0.1 - 1e-9 })
    }

    @Test("Platt scaling recovers a known calibration; ROC AUC on small cases")
    func calibrationFit() {
        var rng = SplitMix64(seed: 5)
        var raw: [Float] = [], truth: [Bool] = []
        let trueSlope = 0.6, trueIntercept = -0.5
        for _ in 0..<20_000 {
            let logit = Double.random(in: -4...4, using: &rng)
            raw.append(Float(1 / (1 + exp(-logit))))
            let p = 1 / (1 + exp(-(trueSlope * logit + trueIntercept)))
            truth.append(rng.unit() < p)
        }
        let c = CalibrationFit.fit(raw: raw, truth: truth)
        #expect(abs(c.slope - trueSlope) < 0.05, "\(c)")
        #expect(abs(c.intercept - trueIntercept) < 0.08, "\(c)")
        let bins = CalibrationFit.reliability(raw: raw, truth: truth, calibration: c)
        for bin in bins where bin.count > 500 { #expect(abs(bin.predicted - bin.observed) < 0.05, "\(bin)") }

        #expect(CalibrationFit.rocAUC(scores: [0.1, 0.2, 0.8, 0.9], truth: [false, false, true, true]) == 1)
        #expect(CalibrationFit.rocAUC(scores: [0.9, 0.8, 0.2, 0.1], truth: [false, false, true, true]) == 0)
        #expect(CalibrationFit.rocAUC(scores: [0.5, 0.5], truth: [false, true]) == 0.5)
    }

    @Test("simulated calls follow the plan: one speaker, calm and upset stretches where planned, a phone channel")
    func simulatedCall() throws {
        let rows: [ManifestEntry] =
            ["crema-1009_DFA_ANG_XX.wav", "crema-1015_ITH_SAD_XX.wav", "crema-1009_DFA_ANG_XX.wav"].map {
                ManifestEntry(path: $0, corpus: "c", speaker: "1", emotion: .angry, upset: true, duration: 2.2)
            }
            + [ManifestEntry](
                repeating: ManifestEntry(
                    path: "crema-1011_IEO_NEU_XX.wav", corpus: "c", speaker: "1", emotion: .neutral, upset: false,
                    duration: 2.0), count: 3)
        let plans = CallSimulation.plan(entries: rows, use: Array(rows.indices), callsPerKind: 1, seed: 3)
        #expect(plans.map(\.kind) == SimulatedCall.Kind.allCases)
        let model = CallSimulation.uncalibrated(try EmotionModel.builtIn())
        let predictor = try ClipPredictor(model: model)
        let scored = try CallSimulation.score(
            plan: plans[0], entries: rows, corpora: Fixtures.directory, predictor: predictor)
        #expect(scored.call.kind == .calmUpsetCalm)
        let stretch = try #require(scored.call.upsetStretches.first)
        #expect(scored.call.upsetStretches.count == 1)
        #expect(stretch.start >= 19 && stretch.end - stretch.start >= 19, "\(stretch)")
        #expect(scored.call.duration >= 60)
        #expect(scored.windows.count >= 55)
        #expect(scored.windows.contains { $0.rawUpset != nil })
        // Deterministic for a seed.
        let again = try CallSimulation.score(
            plan: plans[0], entries: rows, corpora: Fixtures.directory, predictor: try ClipPredictor(model: model))
        #expect(again.windows.map(\.rawUpset) == scored.windows.map(\.rawUpset))
    }

    @Test("escalation headroom: each calm segment's and each upset stretch's highest K-window mean")
    func headroom() {
        // A calm call with a 5 s burst at 0.9, and a calm -> upset -> calm call at 0.8 in its stretch.
        let calm = Self.call(kind: .calm, seconds: 60, stretches: []) { $0 > 30 && $0 <= 35 ? 0.9 : 0.1 }
        let stretch = Self.call(kind: .calmUpsetCalm, seconds: 60, stretches: [(20, 40)]) {
            $0 > 20 && $0 <= 40 ? 0.8 : 0.2
        }
        let short = EscalationHeadroom([calm, stretch], calibration: .identity, windows: 5)
        // The calm call's peak is its burst (0.9); the stretch call's calm part (before 20 s, and after its
        // stretch's grace) peaks at 0.2; its stretch at 0.8.
        #expect(short.calmPeaks.count == 2 && short.stretchPeaks.count == 1)
        #expect(abs(short.calmPeaks[0] - 0.2) < 1e-6 && abs(short.calmPeaks[1] - 0.9) < 1e-6, "\(short.calmPeaks)")
        #expect(abs(short.stretchPeaks[0] - 0.8) < 1e-6)
        #expect(short.stretchesAbove(0.9) == 0, "no rule on 5 windows escalates it without the calm burst")
        // Over 15 windows the burst is diluted to 0.1 + 0.8 / 3, under the stretch's 0.8.
        let long = EscalationHeadroom([calm, stretch], calibration: .identity, windows: 15)
        #expect(abs(long.calmPeaks[1] - (0.1 + 0.8 * 5 / 15)) < 1e-6, "\(long.calmPeaks)")
        #expect(long.stretchesAbove(long.calmPeaks.last!) == 1)
    }

    @Test("scored calls survive the file, and a wrong file is refused with the reason")
    func scoredCallsFile() throws {
        let a = Self.call(kind: .calmUpsetCalm, seconds: 60, stretches: [(20, 40)]) { $0 > 20 && $0 <= 40 ? 0.9 : 0.1 }
        var b = Self.call(kind: .calm, seconds: 30, stretches: []) { _ in 0.3 }
        b.windows[4].rawUpset = nil
        let calibration = UpsetCalibration(slope: 1.2, intercept: -0.2)
        let file = ScoredCallsFile(folds: [[a], [b]], calibration: calibration, command: "emotiontap train")
        let dir = try TemporaryDirectory()
        let url = dir.url.appendingPathComponent("calls.json")
        try file.encoded().write(to: url)
        let back = try ScoredCallsFile.load(url)
        #expect(back.calibration == calibration && back.command == "emotiontap train")
        let folds = back.scoredFolds
        #expect(folds.count == 2 && folds[0][0].call.kind == .calmUpsetCalm && folds[1][0].call.kind == .calm)
        #expect(
            folds[0][0].call.upsetStretches.map(\.start) == [20] && folds[0][0].call.upsetStretches.map(\.end) == [40])
        #expect(folds[0][0].windows.map(\.rawUpset) == a.windows.map(\.rawUpset))
        #expect(folds[1][0].windows.map(\.rawUpset) == b.windows.map(\.rawUpset))
        #expect(folds[1][0].windows.map(\.speechSeconds) == b.windows.map(\.speechSeconds))
        // The search on the file is the search on the calls.
        let policy = LegPolicy()
        #expect(
            CallReplay.figures(folds.flatMap { $0 }, policy: policy, calibration: calibration)
                == CallReplay.figures([a, b], policy: policy, calibration: calibration))

        func refusal(_ text: String) -> String? {
            let bad = dir.url.appendingPathComponent("bad.json")
            try? Data(text.utf8).write(to: bad)
            do { _ = try ScoredCallsFile.load(bad) } catch { return "\(error)" }
            return nil
        }
        let json = String(decoding: try file.encoded(), as: UTF8.self)
        #expect(refusal("{")?.contains("not a scored-calls file") == true)
        #expect(
            refusal(json.replacingOccurrences(of: "\"version\":1", with: "\"version\":7"))?.contains("version 7")
                == true)
        #expect(
            refusal(json.replacingOccurrences(of: "\"kind\":\"calm\"", with: "\"kind\":\"loud\""))?.contains("'loud'")
                == true)
        let oneFold = ScoredCallsFile(folds: [[a, b]], calibration: calibration, command: "")
        #expect(refusal(String(decoding: try oneFold.encoded(), as: UTF8.self))?.contains("at least 2") == true)
        #expect(throws: ScoredCallsFile.Invalid.self) {
            try ScoredCallsFile.load(dir.url.appendingPathComponent("none.json"))
        }
    }

    @Test("the exported mel bands are each frame's own: their DCT gives the frame's MFCCs, row for row")
    func exportedMelBands() throws {
        let samples = try Fixtures.audio("crema-1009_DFA_ANG_XX.wav").samples
        let config = FeatureConfig()
        let extractor = try FrameFeatureExtractor(config: config)
        let aggregator = try WindowAggregator(config: WindowConfig(), frameStep: config.frameStep)
        let plain = FeatureExport.clip(samples, extractor: extractor, aggregator: aggregator)
        let clip = FeatureExport.clip(samples, extractor: extractor, aggregator: aggregator, melBands: true)
        #expect(plain.mel.isEmpty)
        #expect(clip.frames == plain.frames && clip.windows == plain.windows, "the option changes nothing else")
        let columns = FeatureExport.frameColumns.count, frames = clip.frames.count / columns
        #expect(frames > 100 && clip.mel.count == frames * config.nMels)
        let dct = FilterBanks.dct(count: FeatureConfig.mfccCount, size: config.nMels)
        var worst: Double = 0
        for f in 0..<frames {
            let bands = clip.mel[(f * config.nMels)..<((f + 1) * config.nMels)]
            for c in 0..<FeatureConfig.mfccCount {
                let mfcc = zip(dct[c], bands).reduce(0.0) { $0 + $1.0 * Double($1.1) }
                let exported = Double(clip.frames[f * columns + FrameLayout.mfcc.lowerBound + c])
                worst = max(worst, abs(mfcc - exported) / max(1, abs(exported)))
            }
        }
        #expect(worst < 1e-4, "worst relative MFCC difference \(worst)")
    }

    @Test("npy files carry the shape and the exact floats")
    func npy() throws {
        let dir = try TemporaryDirectory()
        let url = dir.url.appendingPathComponent("m.npy")
        let writer = try NpyWriter(url: url, columns: 3)
        try writer.append([1, 2, 3, 4.5, -5, 6])
        try writer.close()
        let data = try Data(contentsOf: url)
        #expect(data.prefix(6) == Data([0x93] + Array("NUMPY".utf8)))
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        #expect((10 + headerLength) % 64 == 0)
        let header = String(decoding: data[10..<(10 + headerLength)], as: UTF8.self)
        #expect(header.contains("'shape': (2, 3)") && header.contains("'<f4'"), "\(header)")
        let floats = data[(10 + headerLength)...].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(floats == [1, 2, 3, 4.5, -5, 6])
    }
}
