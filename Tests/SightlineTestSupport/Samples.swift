import Foundation

/// Real photos for model tests: scikit-image's bundled `skimage/data` PNGs, from the
/// scikit-image wheel on PyPI (fetched once, cached in ~/.cache/sightline/samples/skimage,
/// each file checked by sha256 — the wheel itself differs per platform, the photos do not).
public enum SamplePhotos {
    public static let sha256: [String: String] = [
        "astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
        "chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
        "coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
        "motorcycle_left.png": "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179",
        "ihc.png": "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef",
        "color.png": "7d2df993de2b4fa2a78e04e5df8050f49a9c511aa75e59ab3bd56ac9c98aef7e",
    ]

    public static var directory: String {
        (ProcessInfo.processInfo.environment["SIGHTLINE_CACHE"] ?? (NSHomeDirectory() + "/.cache/sightline")) + "/samples/skimage"
    }

    /// Paths of all photos, fetching them on first use.
    public static func all() throws -> [String: String] {
        let dir = directory
        let missing = sha256.keys.filter { !FileManager.default.fileExists(atPath: dir + "/" + $0) }
        if !missing.isEmpty {
            try Tool.run("python3", ["-c", """
            import os, subprocess, sys, tempfile, zipfile, hashlib
            out = sys.argv[1]; wanted = dict(a.split("=") for a in sys.argv[2:])
            os.makedirs(out, exist_ok=True)
            with tempfile.TemporaryDirectory() as tmp:
                subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--disable-pip-version-check",
                                "scikit-image==0.22.0", "-d", tmp], check=True)
                wheel = [f for f in os.listdir(tmp) if f.endswith(".whl")][0]
                with zipfile.ZipFile(os.path.join(tmp, wheel)) as z:
                    for name, digest in wanted.items():
                        data = z.read("skimage/data/" + name)
                        if hashlib.sha256(data).hexdigest() != digest: sys.exit("sha256 mismatch for " + name)
                        with open(os.path.join(out, name + ".partial"), "wb") as f: f.write(data)
                        os.replace(os.path.join(out, name + ".partial"), os.path.join(out, name))
            """, dir] + sha256.map { "\($0.key)=\($0.value)" })
        }
        return Dictionary(uniqueKeysWithValues: sha256.keys.map { ($0, dir + "/" + $0) })
    }
}
