"""Open an HTML page the way a user does, in a real headless browser (Debian's chromium).

`load_page` opens a file from disk, waits for it to load, and says which images did not
render; tests that write a page a user opens call it. Where chromium is not installed the
calling test skips (setup.sh installs it).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

# Flags for a closed network and a root user: no sandbox, no background connections.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-file-access-from-files",
]

# Run after the load event, inside the page: every <img> must have decoded to a real picture.
_PROBE = """<script>
window.addEventListener("load", function () {
  var missing = [];
  var images = document.images;
  for (var i = 0; i < images.length; i++) {
    var img = images[i];
    var src = (img.getAttribute("src") || "").slice(0, 200);
    if (!img.complete || img.naturalWidth === 0) missing.push(src);
  }
  var report = document.createElement("pre");
  report.id = "__browser_check__";
  report.textContent = JSON.stringify({images: images.length, missing: missing});
  document.body.appendChild(report);
});
</script>"""


@dataclass
class LoadedPage:
    dom: str  # the document as the browser holds it after loading
    images: int  # <img> elements on the page
    missing_images: list[str]  # src of each <img> that did not render

    @property
    def text(self) -> str:
        """The page's visible words, tags stripped and entities decoded."""
        body = re.sub(r"<(script|style)\b.*?</\1>", " ", self.dom, flags=re.S | re.I)
        return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Debian's chromium is not installed (bash tests/setup_tests.sh installs it)")
    return path


def load_page(page: Path, timeout: float = 120) -> LoadedPage:
    """Load ``page`` from disk in headless chromium and report what rendered.

    A copy with a small probe script is written beside the page (so relative image paths
    resolve as they do for the user) and removed afterwards; the page itself is untouched.
    """
    page = Path(page).resolve()
    source = page.read_text(encoding="utf-8")
    probed = (
        source.replace("</body>", _PROBE + "</body>", 1) if "</body>" in source else source + _PROBE
    )
    probe_copy = page.with_name(f".{page.stem}.browser-check.html")
    probe_copy.write_text(probed, encoding="utf-8")
    try:
        with tempfile.TemporaryDirectory() as profile:
            done = subprocess.run(
                [
                    chromium(),
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={profile}",
                    "--virtual-time-budget=20000",
                    "--dump-dom",
                    probe_copy.as_uri(),
                ],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
    finally:
        probe_copy.unlink(missing_ok=True)
    match = re.search(r'<pre id="__browser_check__">(.*?)</pre>', done.stdout, re.S)
    if match is None:
        raise AssertionError(
            f"chromium did not finish loading {page} (exit {done.returncode}):\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    found = json.loads(html.unescape(match.group(1)))
    dom = done.stdout[: match.start()] + done.stdout[match.end() :]
    return LoadedPage(dom=dom, images=found["images"], missing_images=found["missing"])


def screenshot(page: Path, png: Path, width: int = 1200, height: int = 3000) -> Path:
    """A full-width picture of ``page`` as chromium renders it (for looking at a page)."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium(),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--screenshot={png}",
                Path(page).resolve().as_uri(),
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )
    return png
