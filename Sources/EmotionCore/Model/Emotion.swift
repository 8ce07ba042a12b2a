import Foundation

/// The seven emotions the model tells apart, in the model's output order.
public enum Emotion: String, CaseIterable, Sendable, Codable, Comparable {
    case angry, disgust, fear, happy, neutral, sad, surprise

    /// Upset = angry, disgust, fear or sad; happy, neutral and surprise are not.
    public var isUpset: Bool {
        switch self {
        case .angry, .disgust, .fear, .sad: return true
        case .happy, .neutral, .surprise: return false
        }
    }

    /// Parses a corpus label; RAVDESS's "calm" counts as neutral. Accepts common abbreviations.
    public init?(label: String) {
        switch label.lowercased().trimmingCharacters(in: .whitespaces) {
        case "angry", "anger", "ang": self = .angry
        case "disgust", "dis": self = .disgust
        case "fear", "fearful", "fea": self = .fear
        case "happy", "happiness", "hap": self = .happy
        case "neutral", "neu", "calm": self = .neutral
        case "sad", "sadness": self = .sad
        case "surprise", "surprised", "ps", "sur": self = .surprise
        default: return nil
        }
    }

    public var index: Int { Self.allCases.firstIndex(of: self)! }

    public static func < (a: Emotion, b: Emotion) -> Bool { a.index < b.index }
}
