"""How good a judge a generator file's discriminator is: the share it calls right on real and generated faces,
framed and re-saved in several ways, and what it says to images that are no face photo.

Prints one table per D: the file's judge (tinygan.judge) and, beside it, the D the GAN trained against.
Rows: the aligned faces the judge's fine-tuning held out (the last --held-out of --data), fresh fakes (seeds
3,000,000 on), the same fakes re-saved as JPEG (quality 75) and pasted into a 178x218 aligned photo, the real
faces re-saved as JPEG, the test-split face crops (--crops) with the training crop, with the whole width, and
framed by the eyes of their mean face; then odd images (blank, transparent, 16-bit, noise, a drawn landscape).

    python benchmarks/judge.py [--checkpoint FILE] [--data ALIGNED.tar] [--crops FACECROPS.tar] [--n 1000]
"""
import argparse
import io
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tinygan import judge, model_files  # noqa: E402
from tinygan.data import FaceDataset  # noqa: E402
from tinygan.image_sources import _readers, scan_source  # noqa: E402
from tinygan.images import CELEBA_CROP, dark_centroid, eyes_box, prepare_for_judging  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def read_files(source, names):
    """The bytes of ``names`` of a folder, .zip or .tar, in the order given."""
    raw = {name: read() for name, read in _readers(source, set(names))}
    return [raw[name] for name in names]


def encoded(pixels, fmt="PNG", **options):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def resaved_as_jpeg(faces, quality=75):
    return np.stack([prepare_for_judging(encoded(face, "JPEG", quality=quality), 64)[0] for face in faces])


def pasted_into_photos(fakes, photos_89x109):
    """Each fake scaled to 128 px and pasted where the training crop of a 178x218 aligned photo is."""
    out = []
    for fake, photo in zip(fakes, photos_89x109):
        big = Image.fromarray(photo).resize((178, 218), Image.LANCZOS)
        big.paste(Image.fromarray(fake).resize((128, 128), Image.LANCZOS), (25, 45))
        out.append(prepare_for_judging(encoded(np.asarray(big)), 64)[0])
    return np.stack(out)


def framed_by_mean_eyes(source, whole_width, n):
    """The crops framed as the aligned faces are: the eyes of their mean face (whole-width squares) put on
    GUIDE's eyes by one box, as fractions of the width, used for every crop. The crops are cut tighter than the
    aligned photos, so where the box reaches outside a crop it is moved inside, as the demo page moves it.
    Returns (faces, box fractions)."""
    mean = np.asarray(whole_width[:n], np.float64).mean(axis=(0, 3))            # (64, 64)
    eyes = dark_centroid(mean, 17, 31, 20, 33), dark_centroid(mean, 33, 47, 20, 33)
    left, top, side = np.array(eyes_box(eyes)[1]) / 64          # the mean face's eyes are level (to 0.1 degrees)
    faces = []
    for raw in read_files(source, scan_source(source)[0][:n]):
        width, height = Image.open(io.BytesIO(raw)).size
        box_side = min(side * width, width, height)
        box_left = min(max(left * width, 0), width - box_side)
        box_top = min(max((height - width) / 2 + top * width, 0), height - box_side)
        faces.append(prepare_for_judging(raw, 64, box=(box_left, box_top, box_side))[0])
    return np.stack(faces), (left, top, side)


def odd_images():
    """Bytes of images that are no face photo, by name."""
    rng = np.random.default_rng(0)
    y = np.linspace(0, 1, 218)[:, None, None]
    landscape = np.where(y < 0.55, np.array([110, 160, 230]) * (1 - 0.3 * y), [60, 140, 50])
    landscape = (landscape + rng.normal(0, 12, (218, 178, 3))).clip(0, 255).astype(np.uint8)
    transparent = io.BytesIO()
    Image.new("RGBA", (178, 218), (0, 0, 0, 0)).save(transparent, format="PNG")
    black16 = io.BytesIO()
    Image.fromarray(np.zeros((218, 178), np.uint16)).save(black16, format="PNG")
    return {"fully transparent PNG": transparent.getvalue(), "black 16-bit PNG": black16.getvalue(),
            "flat grey": encoded(np.full((218, 178, 3), 128, np.uint8)),
            "white page": encoded(np.full((218, 178, 3), 255, np.uint8)),
            "noise": encoded(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)),
            "drawn landscape": encoded(landscape)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="generator file with a judge (default: the pretrained one)")
    parser.add_argument("--data", default=SHARED / "celeba_align_89x109_10k.tar", help="the aligned faces")
    parser.add_argument("--crops", default=SHARED / "celeba_testsplit_facecrops_dev5k.tar",
                        help="face crops of other people, framed differently")
    parser.add_argument("--n", type=int, default=1000, help="faces per row")
    args = parser.parse_args()
    tree, path = model_files.load_tree(args.checkpoint or model_files.PRETRAINED)
    held_out = tree.get("provenance", {}).get("judge", {}).get("held_out_images", args.n)
    G = model_files.load_generator(path)
    aligned = FaceDataset(args.data, 64, crop=CELEBA_CROP, verbose=False).images
    real = np.asarray(aligned[-held_out:][:args.n])
    fakes = judge.fresh_fakes(G, args.n, start=3 * 10 ** 6)
    photos = np.stack([np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))
                       for raw in read_files(args.data, scan_source(args.data)[0][-args.n:])])
    crops_training = FaceDataset(args.crops, 64, crop=CELEBA_CROP, verbose=False).images[:args.n]
    crops_whole = FaceDataset(args.crops, 64, crop=1.0, verbose=False).images
    crops_framed, box = framed_by_mean_eyes(args.crops, crops_whole, args.n)
    rows = [("held-out aligned real faces", real, True), ("fresh fakes", fakes, False),
            ("fakes re-saved as JPEG q75", resaved_as_jpeg(fakes), False),
            ("fakes pasted into a 178x218 photo", pasted_into_photos(fakes, photos), False),
            ("real faces re-saved as JPEG q75", resaved_as_jpeg(real), True),
            (f"test-split crops, centre crop {CELEBA_CROP:.3f}", crops_training, True),
            ("test-split crops, whole width", crops_whole[:args.n], True),
            (f"test-split crops framed by their mean eyes (box left {box[0]:.3f}, top {box[1]:.3f}, side "
             f"{box[2]:.3f} of the width, moved inside each crop)", crops_framed, True)]
    face_model, judge_D = model_files.load_face_model(path), model_files.load_discriminator(path)
    passed = {name: f"{face_model.is_face(judge_D, faces).mean():.1%}" if face_model else "-"
              for name, faces, _ in rows}
    odd = {name: prepare_for_judging(raw, 64)[0] for name, raw in odd_images().items()}
    for which in ("judge", "gan"):
        D = model_files.load_discriminator(path, which=which)
        print(f"\n{which}: {'the judge fitted for judging' if D.role == 'judge' else 'the D the GAN trained against'}")
        print(f"| faces | n | called right | mean D | passed the face check |\n| --- | --- | --- | --- | --- |")
        for name, faces, is_real in rows:
            probs = judge.probabilities(D, faces)
            right = judge.called_real(probs) if is_real else ~judge.called_real(probs)
            print(f"| {name} | {len(faces)} | {right.mean():.1%} {'real' if is_real else 'fake'} | "
                  f"{probs.mean():.3f} | {passed[name]} |")
        print("| image | D(x) | verdict | passed the face check |\n| --- | --- | --- | --- |")
        for name, face in odd.items():
            answer = judge.judge_faces(D, face[None])[0]
            is_face = face_model.is_face(judge_D, face[None])[0] if face_model else True
            print(f"| {name} | {answer['probability']:.3f} | {answer['verdict'] if is_face else 'no verdict'} | "
                  f"{'yes' if is_face else 'no'} |")


if __name__ == "__main__":
    main()
