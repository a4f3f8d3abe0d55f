#!/usr/bin/env python3
"""Compares the PNGs saved by scripts/studio-photo-demo.sh with the photo.

usage: photo-diff.py OUT_DIR   (reads photo.png, retouch.png, outpaint.png;
                                the session's masks under OUT_DIR/session if any)

Prints, for the retouch: how many pixels changed, their bounding box, and the
bounding box of the painted mask (from the session, when found); for the
outpaint: its size, whether any pixel of the original photo area changed
(compared with the retouched version it started from), and the border's.
"""
import glob
import json
import os
import sys

import numpy as np
from PIL import Image


def load(p):
    return np.asarray(Image.open(p).convert("RGB")).astype(np.int16)


def bbox(m):
    ys, xs = np.nonzero(m)
    if len(xs) == 0:
        return None
    return (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)  # x0 y0 x1 y1 (exclusive)


def masks(out):
    """The masks of the session (grey PNGs), largest index last."""
    found = []
    first = os.path.join(out, "mask-retouch.png")
    if os.path.exists(first):
        found.append((first, np.asarray(Image.open(first).convert("L")) > 127))
    for p in sorted(glob.glob(os.path.join(out, "session", "**", "*.png"), recursive=True)):
        im = Image.open(p)
        if im.mode in ("L", "1", "LA") or "mask" in os.path.basename(p):
            found.append((p, np.asarray(im.convert("L")) > 127))
    return found


def main():
    out = sys.argv[1]
    photo = load(os.path.join(out, "photo.png"))
    h, w, _ = photo.shape
    print(f"photo {w}x{h}")
    ms = masks(out)
    for p, m in ms:
        print(f"session mask {os.path.relpath(p, out)}: {m.shape[1]}x{m.shape[0]}, {int(m.sum())} px painted, bbox {bbox(m)}")
    rp = os.path.join(out, "retouch.png")
    if os.path.exists(rp):
        r = load(rp)
        print(f"retouch.png {r.shape[1]}x{r.shape[0]}")
        if r.shape == photo.shape:
            d = np.abs(r - photo).max(axis=2)
            for t in (0, 8, 32):
                ch = d > t
                print(f"  pixels differing by more than {t}: {int(ch.sum())} of {w*h} ({100*ch.mean():.2f}%), bbox {bbox(ch)}")
            small = [m for _, m in ms if m.shape == (h, w)]
            if small:
                m = small[0]
                ch = d > 0
                print(f"  mask from session: {int(m.sum())} px, bbox {bbox(m)}")
                print(f"  changed pixels inside the mask: {int((ch & m).sum())}, outside: {int((ch & ~m).sum())}")
                # how far outside the mask the changes go
                if (ch & ~m).any():
                    from scipy import ndimage  # scikit-image brings scipy
                    dist = ndimage.distance_transform_edt(~m)
                    print(f"  farthest changed pixel outside the mask: {dist[ch & ~m].max():.1f} px from it")
    op = os.path.join(out, "outpaint.png")
    if os.path.exists(op):
        o = load(op)
        oh, ow, _ = o.shape
        print(f"outpaint.png {ow}x{oh}")
        base = load(rp) if os.path.exists(rp) else photo
        if oh == h and ow > w:
            d = np.abs(o[:, :w] - base).max(axis=2)
            print(f"  original {w}x{h} area (left part) vs retouch.png: {int((d > 0).sum())} px differ (max diff {int(d.max())}), bbox {bbox(d > 0)}")
            d0 = np.abs(o[:, :w] - photo).max(axis=2)
            print(f"  original {w}x{h} area vs the photo: {int((d0 > 0).sum())} px differ, bbox {bbox(d0 > 0)}")
            border = o[:, w:]
            print(f"  new border {ow - w}x{oh}: mean RGB {border.reshape(-1, 3).mean(axis=0).round(1).tolist()}, std {border.reshape(-1, 3).std(axis=0).round(1).tolist()}")
        else:
            print("  unexpected size for a right-hand extension")


if __name__ == "__main__":
    main()
