"""Screenshots of ``scattertag serve`` for the docs: gallery and frame view, headless Chromium.

    python scripts/serve_screenshots.py --out docs    # docs/serve_gallery.png, docs/serve_frame.png

Serves a temporary state folder with the shipped tagger, uploads the real frames bundled in
``scattertag.examples`` (each with its own beam centre), and watches a folder into which
simulated frames of one experiment are written, then photographs the page.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

#: JavaScript: true once every picture of the frame view has arrived.
IMAGES_LOADED = (
    "return [...document.querySelectorAll('#frame-view img')]"
    ".every(i => i.complete && i.naturalWidth > 0)"
)


def shrink(path: Path) -> None:
    """Re-save a screenshot with a 256-colour palette (a third of the size, same look)."""
    from PIL import Image

    with Image.open(path) as image:
        image.convert("RGB").quantize(256).save(path, optimize=True)


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def simulated_frames(
    folder: Path, count: int, size: int = 512, seed: int = 3
) -> tuple[float, float]:
    """Write ``count`` simulated frames of one experiment as .npy; returns its beam centre."""
    from scattertag.simulate import Recipe, draw_experiment, simulate_image

    exp = draw_experiment(Recipe(size=size), seed, 0)
    for i in range(count):
        np.save(folder / f"sim_{i:03d}.npy", simulate_image(exp, i).counts)
    return exp.geometry.beam_center


def browser(width: int, height: int):
    """A headless Chromium driven by selenium."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={width},{height}")
    options.binary_location = "/usr/bin/chromium"  # Debian's; no download by selenium-manager
    service = webdriver.ChromeService(executable_path="/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs")
    parser.add_argument("--simulated", type=int, default=8)
    args = parser.parse_args()
    from selenium.webdriver.common.by import By

    from scattertag.examples import example_frames
    from scattertag.geometry import GeometryOptions
    from scattertag.serve.app import running
    from scattertag.serve.config import ServeConfig

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "detector"
        folder.mkdir()
        beam = simulated_frames(folder, args.simulated)
        config = ServeConfig(
            folders=[folder], watch=True, state=Path(tmp) / "state", setup=GeometryOptions(beam),
            port=free_port(), interval_s=0.5,
        )  # fmt: skip
        with running(config) as url:
            for ex in example_frames():
                with open(ex.path, "rb") as f:
                    params = {
                        "beam_x": ex.beam_center[0],
                        "beam_y": ex.beam_center[1],
                        "pixel_size_um": ex.pixel_size_um,
                    }
                    r = httpx.post(
                        url + "/api/tag/file", params=params, files={"file": (ex.path.name, f)},
                        timeout=300,
                    )  # fmt: skip
                    r.raise_for_status()
            deadline = time.monotonic() + 300
            while httpx.get(url + "/api/frames").json()["total"] < args.simulated + 6:
                if time.monotonic() > deadline:
                    raise RuntimeError("frames were not all tagged in time")
                time.sleep(0.5)
            driver = browser(1400, 1300)
            try:
                driver.get(url + "/")
                time.sleep(4)  # thumbnails and the plot
                driver.save_screenshot(str(out / "serve_gallery.png"))
                cards = driver.find_elements(By.CSS_SELECTOR, ".card")
                target = next(c for c in cards if "rings_mn23" in c.text)
                target.click()
                deadline = time.monotonic() + 120
                while not driver.execute_script(IMAGES_LOADED) and time.monotonic() < deadline:
                    time.sleep(0.5)  # the server draws the frame and its cake
                driver.save_screenshot(str(out / "serve_frame.png"))
            finally:
                driver.quit()
    for name in ("serve_gallery.png", "serve_frame.png"):
        shrink(out / name)
    print(f"wrote {out / 'serve_gallery.png'} and {out / 'serve_frame.png'}")


if __name__ == "__main__":
    main()
