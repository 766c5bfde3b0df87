import SightlineCore

/// Plain colour names people search by ("a person in a red jacket"): the dominant basic colour
/// of a box's pixels. Each pixel is named by hue, saturation and value (black, white, grey,
/// then red, orange, yellow, green, cyan, blue, purple, pink, brown by hue); the most common
/// name wins if it covers at least `minShare` of the box. Pure.
public enum ColourNames {
    public static func dominant(in frame: Frame, box: PixelBox, minShare: Double = 0.3) -> String? {
        let inside = box.clipped(width: frame.width, height: frame.height)
        let x0 = Int(inside.x), y0 = Int(inside.y), x1 = Int(inside.x + inside.width), y1 = Int(inside.y + inside.height)
        guard x1 > x0, y1 > y0, frame.pixelFormat != .gray8, frame.pixels.count >= frame.rowBytes * frame.height else { return nil }
        let (r, b) = frame.pixelFormat == .bgr24 ? (2, 0) : (0, 2)
        // At most ~64×64 samples per box: enough for a dominant colour.
        let step = max(1, max(x1 - x0, y1 - y0) / 64)
        var counts: [String: Int] = [:]
        var total = 0
        for y in stride(from: y0, to: y1, by: step) {
            for x in stride(from: x0, to: x1, by: step) {
                let o = y * frame.rowBytes + x * 3
                counts[name(red: frame.pixels[o + r], green: frame.pixels[o + 1], blue: frame.pixels[o + b]), default: 0] += 1
                total += 1
            }
        }
        guard let best = counts.max(by: { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key }),
              Double(best.value) >= minShare * Double(total) else { return nil }
        return best.key
    }

    /// One pixel's colour name.
    public static func name(red: UInt8, green: UInt8, blue: UInt8) -> String {
        let r = Double(red) / 255, g = Double(green) / 255, b = Double(blue) / 255
        let maxC = max(r, g, b), minC = min(r, g, b), chroma = maxC - minC
        let value = maxC, saturation = maxC > 0 ? chroma / maxC : 0
        if value < 0.2 { return "black" }
        if saturation < 0.18 { return value > 0.8 ? "white" : (value < 0.4 ? "black" : "grey") }
        var hue: Double
        if maxC == r { hue = ((g - b) / chroma).truncatingRemainder(dividingBy: 6) } else if maxC == g { hue = (b - r) / chroma + 2 } else { hue = (r - g) / chroma + 4 }
        hue *= 60
        if hue < 0 { hue += 360 }
        switch hue {
        case ..<15, 345...: return value < 0.55 && saturation > 0.4 ? "brown" : (saturation < 0.5 && value > 0.7 ? "pink" : "red")
        case ..<40: return value < 0.6 ? "brown" : "orange"
        case ..<70: return value < 0.5 ? "brown" : "yellow"
        case ..<160: return "green"
        case ..<200: return "cyan"
        case ..<260: return "blue"
        case ..<300: return "purple"
        default: return "pink"
        }
    }

    /// A person's upper and lower body within their box (the box of the `people` node covers
    /// head to feet): shoulders to hips, and hips to knees. Used when the detector gave no
    /// shoulder and hip keypoints.
    public static func person(in frame: Frame, box: PixelBox) -> (upper: String?, lower: String?) {
        let upper = PixelBox(x: box.x + box.width * 0.25, y: box.y + box.height * 0.2, width: box.width * 0.5, height: box.height * 0.3)
        let lower = PixelBox(x: box.x + box.width * 0.25, y: box.y + box.height * 0.55, width: box.width * 0.5, height: box.height * 0.3)
        return (dominant(in: frame, box: upper), dominant(in: frame, box: lower))
    }

    /// A person's colours placed by their keypoints: the torso between the shoulder and hip
    /// centres, the thighs below the hip centre for as far again. Box fractions put the
    /// "upper body" on the face or the background in a close-up (the box is a square around
    /// the whole body, most of it outside the frame); here a part mostly outside the frame
    /// gets no colour rather than a wrong one.
    public static func person(in frame: Frame, object: DetectedObject) -> (upper: String?, lower: String?) {
        func point(_ name: String) -> (x: Double, y: Double)? {
            object.keypoints.first { $0.name == name }.map { ($0.x, $0.y) }
        }
        guard let shoulder = point("shoulder_center"), let hip = point("hip_center") else {
            return person(in: frame, box: object.box)
        }
        let torso = ((hip.x - shoulder.x) * (hip.x - shoulder.x) + (hip.y - shoulder.y) * (hip.y - shoulder.y)).squareRoot()
        guard torso >= 4 else { return (nil, nil) }
        // Half a torso wide; from just below the shoulders to just above the hips, and from
        // just below the hips down one torso length (upright people; a lying person's band is
        // still centred on the segment).
        func band(from a: (x: Double, y: Double), to b: (x: Double, y: Double)) -> String? {
            let x0 = min(a.x, b.x) - torso * 0.25, x1 = max(a.x, b.x) + torso * 0.25
            let y0 = min(a.y, b.y), y1 = max(a.y, b.y)
            let wanted = PixelBox(x: x0, y: y0, width: x1 - x0, height: max(y1 - y0, 1))
            let visible = wanted.clipped(width: frame.width, height: frame.height)
            guard visible.width * visible.height >= 0.5 * wanted.width * wanted.height else { return nil }
            return dominant(in: frame, box: visible)
        }
        let along = (x: (hip.x - shoulder.x) / torso, y: (hip.y - shoulder.y) / torso)
        func step(_ p: (x: Double, y: Double), _ length: Double) -> (x: Double, y: Double) { (p.x + along.x * length, p.y + along.y * length) }
        let upper = band(from: step(shoulder, torso * 0.15), to: step(hip, -torso * 0.1))
        let lower = band(from: step(hip, torso * 0.1), to: step(hip, torso * 0.9))
        return (upper, lower)
    }
}
