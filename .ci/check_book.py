#!/usr/bin/env python3
"""Open every page of the built book in headless Chromium and check that it really rendered.

For each page listed in ``_toc.yml`` this checks that it loads, has a title (``h1``), that
every image on it loaded (``naturalWidth > 0``), that MathJax typeset every equation (no
raw ``$$``, ``\\(`` or ``\\[`` left in the text, no MathJax error boxes), that no
reStructuredText was rendered as plain text, that every file it asks for loaded, and that
it throws no JavaScript exception. It also saves a screenshot of the results page to
``_build/screenshots/results.png``.

Run after ``samlp-lite book``::

    python .ci/check_book.py                 # checks _build/html
    python .ci/check_book.py --html _build/smoke/_build/html

Needs Debian's ``chromium`` package (``apt-get install chromium``) and nothing else: it
drives the browser over the DevTools protocol on a pipe (``--remote-debugging-pipe``), so
no webdriver, Selenium or Node is involved. Exit status: 0 when every page passes, 1 with
a list of failures otherwise, 2 when the check cannot run (no build, no browser).
"""
from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
]
PAGE_SUFFIXES = (".md", ".ipynb", ".rst", ".myst")
VIEWPORT = {"width": 1280, "height": 900}
# JavaScript errors that every Jupyter Book 1.0.4 page throws and that break nothing, so
# they are not failures. sphinx-thebe 0.3.1 (a default extension) emits its configuration
# <script> twice; the second `const` declaration fails and the first stays in force.
# A fresh `jupyter-book create` book shows the same error.
KNOWN_HARMLESS_JS_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",)

# Runs in the page once it has loaded: waits for MathJax and the images, then reports.
INSPECT_PAGE_JS = r"""
(async () => {
  const withTimeout = (promise, ms) =>
    Promise.race([promise, new Promise(resolve => setTimeout(resolve, ms))]);
  document.querySelectorAll('img[loading="lazy"]').forEach(img => { img.loading = 'eager'; });
  await withTimeout(Promise.all([...document.images].map(img => img.complete ? null :
      new Promise(resolve => { img.addEventListener('load', resolve);
                               img.addEventListener('error', resolve); }))), 15000);
  const mathjax = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
  if (mathjax) await withTimeout(window.MathJax.startup.promise, 20000);
  if (document.fonts) await withTimeout(document.fonts.ready, 5000);

  const main = document.querySelector('main') || document.body;
  const h1 = main.querySelector('h1') || document.querySelector('h1');
  const images = [...document.images].map(img => ({
      src: img.getAttribute('src') || '', width: img.naturalWidth, complete: img.complete}));
  const mathNodes = [...main.querySelectorAll('.math')];
  const untypeset = mathNodes.filter(node => !node.querySelector('mjx-container'))
                             .map(node => node.textContent.trim().slice(0, 80));
  const errors = [...main.querySelectorAll('mjx-merror')]
      .map(node => (node.getAttribute('data-mjx-error') || node.textContent).slice(0, 120));
  // Raw TeX delimiters left in the prose, ignoring code, where they may be legitimate,
  const prose = main.cloneNode(true);
  prose.querySelectorAll('pre, code, script, style, mjx-container, textarea, .highlight')
       .forEach(node => node.remove());
  const text = prose.textContent;
  const raw = [];
  // ...and reStructuredText that was read as Markdown (autodoc output outside eval-rst).
  for (const pattern of [/\$\$/, /\\\(/, /\\\[/, /\\begin\{/, /\.\. [a-z]+(:[a-z]+)*::/, /:param [A-Za-z_]+:/]) {
    const match = text.match(pattern);
    if (match) raw.push(text.slice(Math.max(0, match.index - 30), match.index + 50).replace(/\s+/g, ' '));
  }
  return {
    title: h1 ? h1.textContent.replace(/[#¶\s]+$/, '').trim() : null,
    documentTitle: document.title,
    images, mathCount: mathNodes.length, untypeset, mathErrors: errors, rawTex: raw,
    mathjaxLoaded: Boolean(mathjax),
    height: Math.ceil(Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)),
  };
})()
"""


class CheckError(RuntimeError):
    """The check itself cannot run (as opposed to a page failing it)."""


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4)."""

    def __init__(self, binary: str, user_data_dir: str, timeout: float = 60.0):
        self.timeout = timeout
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.buffer = b""
        # Chromium reads commands on fd 3 and writes replies on fd 4. Park our ends of the
        # pipes above 10 so the dup2 calls in the child cannot clobber one another.
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        child_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_browser_r)
        os.close(from_browser_w)

        def wire_pipes() -> None:  # runs in the child, before exec
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}",
             "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            preexec_fn=wire_pipes, close_fds=False)
        os.close(child_in)
        os.close(child_out)
        self.write_fd, self.read_fd = to_browser_w, from_browser_r

    # -- protocol
    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float | None = None) -> dict[str, Any]:
        """Send one command and return its result; raise CheckError on a protocol error."""
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for reply in self._read(deadline):
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise CheckError(f"{method} failed: {reply['error'].get('message')}")
                    return reply.get("result", {})
                if "method" in reply:
                    self.events.append(reply)

    def wait_event(self, method: str, timeout: float) -> dict[str, Any] | None:
        """The first queued or incoming event called ``method``, or None after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            for index, event in enumerate(self.events):
                if event["method"] == method:
                    return self.events.pop(index)
            try:
                self.events.extend(m for m in self._read(deadline) if "method" in m)
            except TimeoutError:
                return None

    def _read(self, deadline: float) -> list[dict[str, Any]]:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.read_fd], [], [], left)
            if not ready:
                raise TimeoutError
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise CheckError(f"Chromium exited unexpectedly:\n{self.output()[-2000:]}")
            self.buffer += chunk
        *messages, self.buffer = self.buffer.split(b"\0")
        return [json.loads(m) for m in messages if m]

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (CheckError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.write_fd)
        os.close(self.read_fd)


def toc_pages(toc_path: Path) -> list[str]:
    """Pages listed in ``_toc.yml`` (the same logic as :func:`samlp_lite.book.toc_pages`)."""
    try:
        from samlp_lite.book import toc_pages as package_toc_pages
    except ImportError:  # the package is not installed: this script still works on its own
        package_toc_pages = None
    if package_toc_pages is not None:
        return package_toc_pages(toc_path)
    toc = yaml.safe_load(toc_path.read_text())
    pages = [toc["root"]]

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if "file" in node:
                pages.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                walk(node.get(key))

    walk(toc)
    stripped = []
    for page in pages:
        for suffix in PAGE_SUFFIXES:
            page = page[: -len(suffix)] if page.endswith(suffix) else page
        stripped.append(page)
    return list(dict.fromkeys(stripped))


def check_page(browser: Browser, session: str, html_dir: Path, page: str,
               screenshot: Path | None) -> tuple[list[str], dict[str, Any]]:
    """Load one page and return (failures, facts)."""
    path = html_dir / f"{page}.html"
    if not path.is_file():
        return [f"{page}: {path} was not built"], {}
    url = path.resolve().as_uri()
    browser.events.clear()
    navigation = browser.send("Page.navigate", {"url": url}, session)
    if navigation.get("errorText"):
        return [f"{page}: navigation failed: {navigation['errorText']}"], {}
    if browser.wait_event("Page.loadEventFired", timeout=30) is None:
        return [f"{page}: did not finish loading within 30 s"], {}
    result = browser.send("Runtime.evaluate", {"expression": INSPECT_PAGE_JS, "awaitPromise": True,
                                               "returnByValue": True}, session, timeout=60)
    if "exceptionDetails" in result:
        return [f"{page}: the page inspection script failed: "
                f"{result['exceptionDetails'].get('text')}"], {}
    facts = result["result"]["value"]
    failures = []
    if not facts["title"]:
        failures.append(f"{page}: no <h1> title")
    for image in facts["images"]:
        if not image["width"]:
            failures.append(f"{page}: image did not load: {image['src']}")
    if facts["mathCount"] and not facts["mathjaxLoaded"]:
        failures.append(f"{page}: {facts['mathCount']} equation(s) but MathJax did not load")
    for snippet in facts["untypeset"][:5]:
        failures.append(f"{page}: equation not typeset: {snippet!r}")
    for message in facts["mathErrors"][:5]:
        failures.append(f"{page}: MathJax error: {message}")
    for snippet in facts["rawTex"]:
        failures.append(f"{page}: raw TeX or reStructuredText left in the text: ...{snippet}...")
    for event in browser.events:
        if event["method"] == "Runtime.exceptionThrown":
            details = event["params"]["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            if not any(known in str(text) for known in KNOWN_HARMLESS_JS_ERRORS):
                failures.append(f"{page}: JavaScript exception: {str(text).splitlines()[0]}")
    failed_urls = [e for e in browser.events if e["method"] == "Network.loadingFailed"
                   and not e["params"].get("canceled")]
    requests = {e["params"]["requestId"]: e["params"]["request"]["url"]
                for e in browser.events if e["method"] == "Network.requestWillBeSent"}
    for event in failed_urls:
        failed = requests.get(event["params"]["requestId"], "?")
        failures.append(f"{page}: could not load {failed} ({event['params'].get('errorText')})")

    if screenshot is not None:
        height = min(max(facts["height"], VIEWPORT["height"]), 16000)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {**VIEWPORT, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
        shot = browser.send("Page.captureScreenshot", {"format": "png"}, session, timeout=60)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {**VIEWPORT, "deviceScaleFactor": 1, "mobile": False}, session)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
    return list(dict.fromkeys(failures)), facts


def find_chromium(explicit: str | None) -> str:
    for candidate in [explicit, os.environ.get("CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser"),
                      shutil.which("google-chrome")]:
        if candidate and Path(candidate).is_file():
            return candidate
    raise CheckError("headless Chromium was not found; install it (Debian: "
                     "`apt-get update && apt-get install -y chromium`) or pass --chromium PATH.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=".", help="book root holding _toc.yml (default: .)")
    parser.add_argument("--html", default=None,
                        help="built HTML folder (default: <root>/_build/html)")
    parser.add_argument("--chromium", default=None, help="Chromium binary (default: /usr/bin/chromium)")
    parser.add_argument("--screenshot-page", default="notebooks/08_reproduce",
                        help="page to screenshot (default: notebooks/08_reproduce, the results chapter)")
    parser.add_argument("--screenshot", default=None,
                        help="screenshot file (default: <root>/_build/screenshots/results.png)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    root = Path(args.root).resolve()
    html_dir = Path(args.html).resolve() if args.html else root / "_build" / "html"
    screenshot = Path(args.screenshot) if args.screenshot else root / "_build" / "screenshots" / "results.png"
    try:
        if not (html_dir / "index.html").is_file():
            raise CheckError(f"no built book at {html_dir}; run `samlp-lite book` first.")
        pages = toc_pages(root / "_toc.yml")
        binary = find_chromium(args.chromium)
    except (CheckError, OSError, ValueError) as err:
        print(f"check_book: error: {err}", file=sys.stderr)
        return 2

    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="check-book-chromium-") as profile:
        browser = Browser(binary, profile)
        try:
            target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = browser.send("Target.attachToTarget",
                                   {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Network"):
                browser.send(f"{domain}.enable", {}, session)
            browser.send("Emulation.setDeviceMetricsOverride",
                         {**VIEWPORT, "deviceScaleFactor": 1, "mobile": False}, session)
            for page in pages:
                page_failures, facts = check_page(
                    browser, session, html_dir, page,
                    screenshot if page == args.screenshot_page else None)
                failures += page_failures
                status = "ok" if not page_failures else f"{len(page_failures)} failure(s)"
                if facts:
                    print(f"{page:<32} {status:<14} title={facts['title']!r} "
                          f"images={len(facts['images'])} math={facts['mathCount']}")
                else:
                    print(f"{page:<32} {status}")
        except (CheckError, TimeoutError) as err:
            print(f"check_book: error: the browser check could not run: {err or 'timed out'}\n"
                  f"{browser.output()[-2000:]}", file=sys.stderr)
            return 2
        finally:
            browser.close()

    if args.screenshot_page not in pages:
        failures.append(f"{args.screenshot_page}: not in _toc.yml, so no screenshot was taken")
    elapsed = time.perf_counter() - started
    if failures:
        print(f"\n{len(failures)} failure(s) in {len(pages)} page(s) ({elapsed:.1f} s):", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    print(f"\nAll {len(pages)} pages rendered ({elapsed:.1f} s); screenshot: {screenshot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
