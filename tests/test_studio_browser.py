"""The studio page in a real headless Chromium (Debian's chromium + chromium-driver, through Selenium),
served by the studio in front of the session's real TorchServe: upload, superres, before/after slider,
zoom and pan, download, colour hints clicked on the photo, recolour, and a refusal shown plainly.
The colorize test leaves a screenshot of the page in benchmarks/results/studio.png (shown in the README).
"""
from __future__ import annotations

import base64
import io
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from werkzeug.serving import make_server

from studio.server import create_app, upstream_from_config
from tests.support import ROOT

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENSHOT = ROOT / "benchmarks" / "results" / "studio.png"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1000")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)")


@pytest.fixture(scope="module")
def studio_url(live):
    """The studio on a free loopback port, in front of the session's TorchServe."""
    upstream = upstream_from_config(live.server.state.parent / "config.properties", live.server.state)
    server = make_server("127.0.0.1", 0, create_app(upstream), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}/"
    server.shutdown()
    thread.join()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="studio-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class StudioPage:
    """What a user does on the page, in Selenium terms."""

    def __init__(self, driver, url: str, downloads: Path) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver, self.downloads = driver, downloads
        driver.get(url)
        WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.body.dataset.ready"))

    def find(self, selector: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, condition, timeout: float = 300):
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(lambda _: condition())

    def choose(self, endpoint: str) -> None:
        from selenium.webdriver.support.ui import Select

        Select(self.find("#endpoint")).select_by_value(endpoint)

    def upload(self, path: Path) -> None:
        self.find("#file").send_keys(str(path))
        self.wait(lambda: path.name in self.find("#file-info").text, 30)

    def drop(self, path: Path) -> None:
        """Drag-and-drop, as a file dragged from the desktop arrives: a drop event carrying the file."""
        self.js("""const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
                   const files = new DataTransfer();
                   files.items.add(new File([bytes], arguments[1], {type: "image/png"}));
                   document.querySelector("#drop").dispatchEvent(
                     new DragEvent("drop", {dataTransfer: files, bubbles: true, cancelable: true}));""",
                base64.b64encode(path.read_bytes()).decode(), path.name)
        self.wait(lambda: path.name in self.find("#file-info").text, 30)

    def run(self) -> None:
        """Press Restore/Recolour; the busy indicator shows at once and the answer (image or error) follows."""
        previous = self.find("#result-info").text
        self.js("""window.busySeen = false;
                   const busy = document.querySelector("#busy"), run = document.querySelector("#run");
                   new MutationObserver(() => { window.busySeen ||= !busy.hidden && run.disabled; })
                     .observe(busy, {attributes: true});""")
        self.find("#run").click()
        self.wait(lambda: not self.find("#busy").is_displayed())
        assert self.js("return window.busySeen")  # shown, with the button disabled, while the request ran
        assert self.find("#error").text or self.find("#result-info").text != previous

    def viewer_point(self, x: int, y: int) -> tuple[float, float]:
        """Where photo pixel (x, y) is drawn, relative to the viewer's top-left corner."""
        return tuple(self.js("""const img = document.querySelector("#before").getBoundingClientRect();
                                const view = document.querySelector("#viewer").getBoundingClientRect();
                                const photo = document.querySelector("#before");
                                return [img.left - view.left + (arguments[0] + 0.5) * img.width / photo.naturalWidth,
                                        img.top - view.top + (arguments[1] + 0.5) * img.height / photo.naturalHeight];""",
                             x, y))

    def pointer(self, start: tuple[float, float], end: tuple[float, float] | None = None, right: bool = False) -> None:
        """A click (or a drag from ``start`` to ``end``) on the viewer, in viewer coordinates."""
        from selenium.webdriver.common.action_chains import ActionChains

        viewer = self.find("#viewer")
        size = viewer.size
        actions = ActionChains(self.driver).move_to_element_with_offset(
            viewer, round(start[0] - size["width"] / 2), round(start[1] - size["height"] / 2))
        if right:
            actions.context_click()
        elif end is None:
            actions.click()
        else:
            actions.click_and_hold().move_by_offset(10, 10).move_by_offset(
                round(end[0] - start[0]) - 10, round(end[1] - start[1]) - 10).release()
        actions.perform()

    def add_hint(self, x: int, y: int, colour: str) -> None:
        """Click the photo, then pick the colour (the new hint is the selected one)."""
        self.pointer(self.viewer_point(x, y))
        self.js("""const picker = document.querySelector("#hint-colour");
                   picker.value = arguments[0];
                   picker.dispatchEvent(new Event("input"));""", colour)

    def hints(self) -> list[str]:
        return [item.text.split("\n")[0] for item in self.driver.find_elements("css selector", "#hint-list li")]

    def image_rect(self, selector: str) -> dict:
        return self.js(f"return document.querySelector('{selector}').getBoundingClientRect().toJSON()")

    def split_state(self) -> tuple[float, str]:
        return self.js("""return [parseFloat(document.querySelector("#divider").style.left),
                                  document.querySelector("#after").style.clipPath];""")

    def download(self, format_: str) -> Path:
        from selenium.webdriver.support.ui import Select

        Select(self.find("#option-format")).select_by_value(format_)
        folder = Path(tempfile.mkdtemp(dir=self.downloads))  # Chromium may reuse a name it saved before
        self.driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)})
        self.find("#download").click()
        self.wait(lambda: [p for p in folder.iterdir() if not p.name.endswith(".crdownload")])
        self.wait(lambda: not self.find("#busy").is_displayed())
        (saved,) = folder.iterdir()
        return saved

    def photo_colour(self, path: Path, x: int, y: int) -> np.ndarray:
        return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)[y - 2:y + 3, x - 2:x + 3].mean((0, 1))


def save_screenshot(png: bytes) -> None:
    """Write the README's screenshot unless it only differs from the committed one by antialiasing."""
    shot = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    if SCREENSHOT.exists():
        kept = np.asarray(Image.open(SCREENSHOT).convert("RGB"), dtype=np.int16)
        if kept.shape == shot.shape and (np.abs(kept - shot) > 8).any(-1).mean() < 0.001:
            return
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.write_bytes(png)


@pytest.fixture
def page(browser, studio_url, tmp_path) -> StudioPage:
    return StudioPage(browser, studio_url, tmp_path)


def cat(tmp_path: Path, name: str, size: tuple[int, int] | None = None, gray: bool = False) -> Path:
    """A real photo that every scikit-image install carries (Chelsea the cat, 451x300)."""
    from skimage import data

    img = Image.fromarray(data.chelsea())
    img = img.resize(size, Image.Resampling.LANCZOS) if size else img
    path = tmp_path / name
    (img.convert("L") if gray else img).save(path)
    return path


def test_superres_compare_zoom_pan_and_download(page, tmp_path):
    page.choose("superres")
    # which network answers: a control generated from the handler's declaration, at its default
    assert page.js("return document.querySelector('#option-input').value") == "auto"
    page.upload(cat(tmp_path, "cat.png", size=(160, 106)))
    page.run()
    assert page.find("#error").text == ""
    assert page.js("return [document.querySelector('#after').naturalWidth, document.querySelector('#after').naturalHeight]") == [640, 424]
    before, after = page.image_rect("#before"), page.image_rect("#after")
    assert (before["width"], before["height"]) == (after["width"], after["height"])  # the input, upscaled for display

    line, clip = page.split_state()
    slider = page.find("#split")
    from selenium.webdriver.common.action_chains import ActionChains
    ActionChains(page.driver).click_and_hold(slider).move_by_offset(-200, 0).release().perform()
    moved_line, moved_clip = page.split_state()
    assert float(slider.get_attribute("value")) < 40
    assert moved_line < line - 100 and moved_clip != clip

    page.find("#actual").click()
    after = page.image_rect("#after")
    assert abs(after["width"] - 640) < 1 and abs(after["height"] - 424) < 1
    assert page.find("#zoom").text == "100 %"
    page.pointer((500, 300), (380, 220))  # pan by (-120, -80)
    panned = page.image_rect("#after")
    assert abs(panned["left"] - (after["left"] - 120)) < 2 and abs(panned["top"] - (after["top"] - 80)) < 2

    saved = page.download("jpeg")  # a format other than the one shown: the studio asks the server again
    assert saved.name == "cat_superres.jpeg"
    with Image.open(saved) as result:
        assert result.format == "JPEG" and result.size == (640, 424)


def test_colorize_with_two_clicked_hints_then_recolour(page, tmp_path):
    from selenium.webdriver.support.ui import Select

    page.choose("colorize")
    page.drop(cat(tmp_path, "cat_gray.png", gray=True))
    assert page.find("#hints").is_displayed() and page.find("#option-mode").is_displayed()
    orange, blue = (200, 100), (410, 200)  # the forehead's fur; the blanket behind
    page.add_hint(190, 90, "#be783c")
    page.add_hint(*blue, "#506ebe")
    page.add_hint(60, 250, "#30c030")
    assert len(page.driver.find_elements("css selector", "#dots .dot")) == 3
    page.pointer(page.viewer_point(60, 250), right=True)  # right-click removes the third hint
    page.pointer(page.viewer_point(190, 90), page.viewer_point(*orange))  # drag the first one into place
    assert page.hints() == ["(200, 100) rgb 190, 120, 60", "(410, 200) rgb 80, 110, 190"]
    assert len(page.driver.find_elements("css selector", "#dots .dot")) == 2

    page.run()
    assert page.find("#error").text == ""
    assert page.find("#run").text == "Recolour"
    page.js("""const split = document.querySelector("#split");
               split.value = 35; split.dispatchEvent(new Event("input"));
               document.querySelector(".panel").scrollTop = 0;""")
    page.find("#fit").click()
    time.sleep(0.3)  # the images repaint after the last layout change
    save_screenshot(page.driver.get_screenshot_as_png())
    first = page.download("png")
    with Image.open(first) as result:
        assert result.size == (451, 300) and result.mode == "RGB"
    r, g, b = page.photo_colour(first, *orange)
    assert r > g > b  # orange where the orange hint is
    r, g, b = page.photo_colour(first, *blue)
    assert b > r and b > g  # blue where the blue hint is

    page.js("document.querySelector('#hint-list li:nth-child(2) .swatch').click()")  # select the blue hint
    page.js("""const picker = document.querySelector("#hint-colour");
               picker.value = "#30c030"; picker.dispatchEvent(new Event("input"));""")
    Select(page.find("#option-mode")).select_by_value("image")
    page.run()  # recolour: the same photo with the current hints and mode
    second = page.download("png")
    r, g, b = page.photo_colour(second, *blue)
    assert g > r and g > b  # green there now


def test_a_refused_input_shows_the_servers_message(page, tmp_path):
    page.choose("deblur")
    notes = tmp_path / "notes.png"
    notes.write_bytes(b"these are notes, not a photo")
    page.upload(notes)
    page.run()
    message = page.find("#error").text
    assert message.startswith("415 UnsupportedImage:") and "PNG, JPEG" in message
