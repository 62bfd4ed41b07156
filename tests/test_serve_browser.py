"""The web page in a real headless Chromium (Debian's chromium + chromium-driver, selenium):
the gallery shows a watched folder, a tag filter narrows it, a correction lands in the labels
table, a new file appears without reloading."""

import csv
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest

webdriver = pytest.importorskip("selenium.webdriver")
pytest.importorskip("fastapi")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    pytest.skip("needs chromium and chromium-driver", allow_module_level=True)

from fabio.tifimage import TifImage  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

import scattertag  # noqa: E402
from conftest import BEAM, frame  # noqa: E402
from scattertag.geometry import GeometryOptions  # noqa: E402
from scattertag.prediction.pipeline import Predictor  # noqa: E402
from scattertag.serve.app import running  # noqa: E402
from scattertag.serve.config import ServeConfig  # noqa: E402

pytestmark = pytest.mark.slow
KEY = "pagekey"
IMAGES_LOADED = (
    "return [...document.querySelectorAll('#frame-view img')]"
    ".every(i => i.complete && i.naturalWidth > 0)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(condition, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def names(driver) -> list[str]:
    """Names on the gallery's cards, read in one go (the page may redraw meanwhile)."""
    script = "return [...document.querySelectorAll('.card .name')].map(e => e.textContent)"
    return sorted(driver.execute_script(script))


@pytest.fixture
def driver():
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1300,1100")
    options.binary_location = CHROMIUM
    browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))
    yield browser
    browser.quit()


def test_gallery_filter_correction_and_live_frame(tmp_path, model_dir, driver):
    folder = tmp_path / "detector"
    folder.mkdir()
    files = [folder / f"a{i}.tif" for i in range(4)]
    for i, path in enumerate(files):
        counts = frame(i) * (1 + 3 * i)  # brighter and brighter: the model's outputs differ
        TifImage(data=counts.astype(np.int32)).write(str(path))
    # a threshold for one tag that splits these frames two and two
    predictor = Predictor(model_dir)
    table = scattertag.predict(files, beam_center=BEAM, model=predictor)
    probs = np.array([[row[t] for t in predictor.vocabulary] for row in table])
    ordered = np.sort(probs, axis=0)
    k = int(np.argmax(ordered[2] - ordered[1]))
    tag = predictor.vocabulary[k]
    predictor.thresholds[k] = (ordered[1, k] + ordered[2, k]) / 2
    expected = sorted(
        Path(r["path"]).name for r, p in zip(table, probs[:, k]) if p >= predictor.thresholds[k]
    )
    assert len(expected) == 2

    config = ServeConfig(
        folders=[folder], watch=True, state=tmp_path / "state", setup=GeometryOptions(BEAM),
        port=free_port(), api_key=KEY, interval_s=0.3,
    )  # fmt: skip
    with running(config, predictor) as url:
        driver.get(url + "/")
        wait(lambda: len(names(driver)) == 4, what="the four frames in the gallery")
        assert names(driver) == [p.name for p in files]
        driver.execute_script("window.notReloaded = true")

        Select(driver.find_element(By.ID, "tag-filter")).select_by_value(tag)
        wait(lambda: names(driver) == expected, what=f"the frames tagged {tag}")
        Select(driver.find_element(By.ID, "tag-filter")).select_by_value("")
        wait(lambda: len(names(driver)) == 4, what="all frames again")

        key = driver.find_element(By.ID, "api-key")
        key.send_keys(KEY)
        driver.execute_script("arguments[0].dispatchEvent(new Event('change'))", key)
        driver.execute_script(
            "[...document.querySelectorAll('.card')].find(c => c.textContent.includes('a1.tif'))"
            ".click()"
        )
        wait(lambda: driver.find_element(By.ID, "frame-view").is_displayed(), what="frame view")
        wait(lambda: driver.execute_script(IMAGES_LOADED), 60, "frame and cake pictures")
        ring = driver.find_element(By.CSS_SELECTOR, '#view-chips [data-tag="Ring"]')
        was_on = "off" not in ring.get_attribute("class")
        ring.click()
        driver.find_element(By.ID, "save-labels").click()
        status = driver.find_element(By.ID, "save-status")
        wait(lambda: "saved to" in status.text, what=f"the correction to be saved ({status.text})")
        with open(config.labels, newline="") as f:
            last = list(csv.DictReader(f, delimiter="\t"))[-1]
        assert Path(last["path"]).name == "a1.tif"
        assert last["Ring"] == ("0" if was_on else "1")
        driver.find_element(By.ID, "close-view").click()

        TifImage(data=frame(7)).write(str(folder / "new.tif"))
        wait(lambda: "new.tif" in names(driver), what="the new file to appear live")
        assert driver.execute_script("return window.notReloaded === true")
        assert len(names(driver)) == 5
