import EmotionTestSupport
import Foundation
import Testing
@testable import EmotionCore

@Suite("emotiontap features")
struct FeaturesCommandTests {
    @Test("jsonl rows follow the contract and honour every parameter")
    func jsonl() throws {
        let clip = Fixtures.url(Fixtures.clips[0]).path
        let result = try runEmotionTap([
            "features", clip, "--n-fft", "256", "--win-length", "200", "--hop-length", "80",
            "--n-mels", "40", "--fmin", "0", "--fmax", "4000",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        let golden = try Golden.load("crema-1009_DFA_ANG_XX__A.json")
        #expect(lines.count == golden.frames.count)
        let first = try #require(try JSONSerialization.jsonObject(with: Data(lines[5].utf8)) as? [String: Any])
        #expect(Set(first.keys).isSuperset(of: ["t", "rms", "zcr", "centroid", "mfcc", "chroma"]))
        #expect((first["mfcc"] as? [Double])?.count == 13)
        #expect((first["chroma"] as? [Double])?.count == 12)
        #expect(abs((first["t"] as? Double ?? -1) - 0.05) < 1e-9)
        #expect(
            abs((first["centroid"] as? Double ?? 0) - golden.frames[5].centroid) <= 1e-3 * golden.frames[5].centroid)
    }

    @Test("csv has a header and one row a frame")
    func csv() throws {
        let result = try runEmotionTap(["features", Fixtures.url(Fixtures.clips[1]).path, "--format", "csv"])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("t,rms,zcr,centroid,mfcc0") == true)
        #expect(lines.dropFirst().allSatisfy { $0.split(separator: ",").count == 4 + 13 + 12 })
    }

    @Test("bad files are reported one line each, the rest still analysed, exit status 2")
    func badFilesAmongGood() throws {
        let dir = try TemporaryDirectory()
        let notRIFF = try dir.write("notes.wav", Array("just text".utf8))
        let empty = try dir.write("empty.wav", [])
        let good = Fixtures.url(Fixtures.clips[2]).path
        let result = try runEmotionTap(["features", notRIFF.path, good, empty.path, "/nonexistent/x.wav"])
        #expect(result.status == 2)
        let errors = result.stderr.split(separator: "\n")
        #expect(errors.count == 3, "\(result.stderr)")
        #expect(errors.contains { $0.contains("notes.wav") && $0.contains("not a RIFF/WAVE file") })
        #expect(errors.contains { $0.contains("empty.wav") && $0.contains("empty") })
        #expect(errors.contains { $0.contains("/nonexistent/x.wav") })
        // The good file's frames, tagged with its name.
        let rows = result.stdout.split(separator: "\n")
        #expect(rows.count == 104)
        #expect(rows.allSatisfy { $0.contains("crema-1015_ITH_SAD_XX.wav") })
    }

    @Test("invalid parameters are refused before any work")
    func invalidParameters() throws {
        let clip = Fixtures.url(Fixtures.clips[0]).path
        for args in [
            ["--n-fft", "255"], ["--win-length", "1024"], ["--fmax", "5000"], ["--hop-length", "0"],
            ["--channel", "x"],
        ] {
            let result = try runEmotionTap(["features", clip] + args)
            #expect(result.status != 0, "\(args)")
            #expect(result.stdout.isEmpty)
            #expect(!result.stderr.isEmpty)
        }
        // Saving scored calls needs calls to score, and rewriting a model needs both ends; said before training.
        for (args, expected) in [
            (
                ["train", "--corpora", ".", "--out", "m.json", "--scored-calls", "c.json"],
                "--scored-calls needs --cv 2"
            ),
            (["tune", "--scored-calls", "c.json", "--model", "m.json"], "--model and --out go together"),
        ] {
            let result = try runEmotionTap(args)
            #expect(result.status != 0 && result.stdout.isEmpty, "\(args)")
            #expect(result.stderr.contains(expected), "\(args): \(result.stderr)")
        }
    }

    @Test("train writes its model before its side reports, so one that cannot be written costs nothing else")
    func trainKeepsModelWhenScoredCallsFail() throws {
        let dir = try TemporaryDirectory()
        // Four fixture clips of four speakers: enough for a 2-fold cross-validation, too few for any call.
        var manifest = "path,corpus,speaker,emotion,intensity,upset,duration_s\n"
        for (name, emotion, upset) in [
            ("crema-1009_DFA_ANG_XX.wav", "angry", 1), ("crema-1011_IEO_NEU_XX.wav", "neutral", 0),
            ("crema-1015_ITH_SAD_XX.wav", "sad", 1), ("crema-1022_IWW_NEU_XX.wav", "neutral", 0),
        ] {
            _ = try dir.write(name, Array(try Data(contentsOf: Fixtures.url(name))))
            manifest += "\(name),crema-d,\(name.dropFirst(6).prefix(4)),\(emotion),unspecified,\(upset),2.5\n"
        }
        _ = try dir.write("manifest.csv", Array(manifest.utf8))
        let model = dir.url.appendingPathComponent("m.json")
        let result = try runEmotionTap(
            [
                "train", "--corpora", dir.url.path, "--out", model.path, "--cv", "2", "--calls", "1", "--augment",
                "0", "--epochs", "1", "--ensemble", "1", "--hidden", "8", "--scored-calls",
                dir.url.appendingPathComponent("calls.json").path,
            ], timeout: 120)
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("calls.json: not written: no held-out speaker had calls to score"))
        #expect(try EmotionModel.load(model).training.clips == 4, "the model was written all the same")
    }

    @Test(
        "tune searches the rules again on saved calls and writes the model with its choice, only for the calibration the calls were scored with"
    )
    func tuneRewritesModel() throws {
        let dir = try TemporaryDirectory()
        let model = try EmotionModel.builtIn()
        let modelFile = try dir.write("model.json", Array(try model.encoded()))
        // What `train --scored-calls` writes: per fold, a calm -> upset -> calm call and a calm one, a window a
        // second with its raw upset score.
        func call(kind: String, stretches: [[Double]], upset: (Double) -> Double) -> [String: Any] {
            let windows = (3...60).map { end -> [String: Any] in
                let e = Double(end)
                return ["start": e - 3, "end": e, "speech": 2.0, "raw": upset(e)]
            }
            return [
                "kind": kind, "speaker": "t/1", "stretches": stretches, "duration": 60.0, "channel": "pcmu",
                "windows": windows,
            ]
        }
        func callsFile(_ name: String, slope: Double, intercept: Double) throws -> URL {
            let fold: [[String: Any]] = [
                call(kind: "calm-upset-calm", stretches: [[20, 40]]) { $0 > 22 && $0 <= 40 ? 0.97 : 0.05 },
                call(kind: "calm", stretches: []) { _ in 0.05 },
            ]
            let json: [String: Any] = [
                "version": 1, "command": "test", "calibration": ["slope": slope, "intercept": intercept],
                "folds": [fold, fold],
            ]
            return try dir.write(name, Array(try JSONSerialization.data(withJSONObject: json)))
        }
        let calls = try callsFile(
            "calls.json", slope: model.calibration.slope, intercept: model.calibration.intercept)
        let tuned = dir.url.appendingPathComponent("tuned.json")
        let result = try runEmotionTap(
            ["tune", "--scored-calls", calls.path, "--model", modelFile.path, "--out", tuned.path], timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("chosen on the other folds") && result.stdout.contains("Escalation headroom"))
        // Chosen on both folds: both stretches caught, no calm speech shown upset.
        let shipped = result.stdout.split(separator: "\n").first { $0.hasPrefix("chosen on all folds") } ?? ""
        #expect(shipped.contains(" 0.0 %") && shipped.contains("2/2 "), "\(result.stdout)")
        let rewritten = try EmotionModel.load(tuned)
        #expect(rewritten.calibration == model.calibration && rewritten.frameNet == model.frameNet)
        #expect(rewritten.networks.count == model.networks.count)
        #expect(rewritten.decision.chosenFor.contains("held-out speakers"))
        // The written policy is the one printed as chosen.
        let printed = String(
            format: "smoothing %.2f, enter upset at %.3f for %d window(s), back to calm below %.3f",
            rewritten.decision.smoothing, rewritten.decision.enterUpset, rewritten.decision.enterWindows,
            rewritten.decision.exitUpset)
        #expect(result.stdout.contains("shipped policy: " + printed), "\(printed)")

        let other = try callsFile("other.json", slope: 1, intercept: 0)
        let refused = try runEmotionTap(
            ["tune", "--scored-calls", other.path, "--model", modelFile.path, "--out", tuned.path], timeout: 60)
        #expect(refused.status == 2 && refused.stdout.isEmpty)
        #expect(refused.stderr.contains("is not the one the calls were scored with"), "\(refused.stderr)")
    }

    @Test(
        "a bad model file stops serve, analyze and eval at start with its reason, never a fallback; so does a bad scored-calls file tune"
    )
    func badModelFile() throws {
        let dir = try TemporaryDirectory()
        let truncated = try dir.write("truncated.json", Array("{\"format\":\"emotiontap-model\",\"vers".utf8))
        let old = try dir.write("old.json", Array("{\"format\":\"emotiontap-model\",\"version\":1}".utf8))
        let clip = Fixtures.url(Fixtures.clips[0]).path
        let cases: [([String], String)] = [
            (
                ["serve", "--model", truncated.path, "--http", "127.0.0.1:65001", "--event-log", "none"],
                "truncated.json: not a model file"
            ),
            (["analyze", clip, "--model", old.path], "old.json: model version 1; this build reads version 2"),
            (["eval", "--corpora", dir.url.path, "--model", old.path], "old.json: model version 1"),
            (["analyze", clip, "--model", dir.url.appendingPathComponent("missing.json").path], "cannot read"),
            (
                ["tune", "--scored-calls", dir.url.appendingPathComponent("missing.json").path],
                "missing.json: cannot read"
            ),
            (["tune", "--scored-calls", old.path], "old.json: not a scored-calls file"),
        ]
        for (args, expected) in cases {
            let result = try runEmotionTap(args, timeout: 20)
            #expect(result.status == 2, "\(args): \(result.status)")
            #expect(result.stdout.isEmpty, "\(args)")
            #expect(result.stderr.contains(expected), "\(args): \(result.stderr)")
        }
    }
}
