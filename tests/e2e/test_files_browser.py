"""The file manager in Chromium: browse, upload with progress, preview text, an image and a PDF,
make a share link and open it in a fresh browser context without logging in."""

import grp
import hashlib
import pwd
import re
import stat
import zlib
from pathlib import Path

from playwright.sync_api import expect

from tests.helpers.browser import login
from tests.helpers.samples import fits_file, pdf, png, root_file


def test_file_manager(make_hub, unix_users, output_dir, browser, tmp_path):
    hub = make_hub({"type": "local"})
    home = Path(pwd.getpwnam("inkt_alice").pw_dir)
    for name in ("notes.txt", "fit.py", "plot.png", "paper.pdf", "sample.root", "sample.fits"):
        (home / name).unlink(missing_ok=True)
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "notes.txt").write_text("E = mc^2\nfirst line of the notes\n")
    (uploads / "fit.py").write_text(
        "def chi2(model, data):\n    return sum((m - d) ** 2 for m, d in zip(model, data))\n"
    )
    (uploads / "plot.png").write_bytes(png())
    (uploads / "paper.pdf").write_bytes(pdf("INK preview"))

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    login(page, hub, "inkt_alice", unix_users["inkt_alice"], output_dir, "alice")
    page.click("#ink-nav-files")
    expect(page.locator("#ink-pager")).to_have_attribute("data-total", re.compile(r"\d+"), timeout=20_000)
    expect(page.locator("#ink-crumbs")).to_contain_text("home")

    page.set_input_files("#ink-upload", [str(uploads / n) for n in ("notes.txt", "plot.png", "paper.pdf")])
    for name in ("notes.txt", "plot.png", "paper.pdf"):
        expect(page.locator(f".ink-upload[data-name='home/{name}']")).to_have_attribute("data-state", "done")
    assert (home / "plot.png").read_bytes() == png()
    assert (home / "paper.pdf").stat().st_uid == pwd.getpwnam("inkt_alice").pw_uid
    sent = page.locator(".ink-upload[data-name='home/paper.pdf']").get_attribute("data-sent")
    assert int(sent) == len(pdf("INK preview"))  # the progress bar reached the file's size
    page.screenshot(path=str(output_dir / "files-uploaded.png"), full_page=True)

    # a file manager as ls -l shows it: owner, group, permissions; the hub's bar leads back
    notes_row = page.locator("#ink-list tr[data-name='notes.txt']")
    cells = notes_row.locator("td")
    expect(cells.nth(3)).to_have_text("inkt_alice")
    expect(cells.nth(4)).to_have_text(grp.getgrgid((home / "notes.txt").stat().st_gid).gr_name)
    expect(cells.nth(5)).to_have_text(stat.filemode((home / "notes.txt").stat().st_mode))
    expect(page.locator("#ink-nav-home")).to_have_attribute("href", "/hub/home")
    expect(page.locator("#ink-nav-files")).to_have_attribute("aria-current", "page")
    expect(page.locator("#logout")).to_be_visible()
    # the keyboard: arrows down to notes.txt, Enter previews it
    names = page.locator("#ink-list tbody tr").evaluate_all("rows => rows.map(r => r.dataset.name)")
    page.locator("#ink-pager").click()
    for _ in range(names.index("notes.txt") + 1):
        page.keyboard.press("ArrowDown")
    expect(notes_row).to_have_class(re.compile("table-active"))
    page.keyboard.press("Enter")
    expect(page.locator("#ink-preview-text")).to_contain_text("first line of the notes")
    # the hub's dark mode, which the page follows and toggles
    page.click("#dark-theme-toggle")
    theme = page.evaluate("document.documentElement.getAttribute('data-bs-theme')")
    assert theme in ("dark", "light")
    page.screenshot(path=str(output_dir / f"files-{theme}.png"))
    page.click("#dark-theme-toggle")
    assert page.evaluate("document.documentElement.getAttribute('data-bs-theme')") != theme

    page.click("#ink-list tr[data-name='notes.txt'] td.name a")
    expect(page.locator("#ink-preview-text")).to_contain_text("first line of the notes")
    page.screenshot(path=str(output_dir / "files-preview-text.png"))

    # checksums on request, and where the file is for ROOT or a job
    notes = (home / "notes.txt").read_bytes()
    page.locator("#ink-list tr[data-name='notes.txt'] button", has_text="checksums").click()
    adler = f"{zlib.adler32(notes) & 0xFFFFFFFF:08x}"
    expect(page.locator("#ink-checksums dd[data-algorithm=adler32]")).to_have_text(adler)
    expect(page.locator("#ink-checksums dd[data-algorithm=sha256]")).to_have_text(
        hashlib.sha256(notes).hexdigest()
    )
    page.screenshot(path=str(output_dir / "files-checksums.png"))
    page.locator("#ink-list tr[data-name='notes.txt'] button", has_text="copy URL").click()
    expect(page.locator("#ink-file-url")).to_have_value(str(home / "notes.txt"))

    page.set_input_files("#ink-upload", [str(uploads / "fit.py")])
    expect(page.locator(".ink-upload[data-name='home/fit.py']")).to_have_attribute("data-state", "done")
    page.click("#ink-list tr[data-name='fit.py'] td.name a")
    code = page.locator("#ink-preview-text[data-language=python]")
    expect(code.locator(".hljs-keyword").first).to_have_text("def")
    page.screenshot(path=str(output_dir / "files-preview-code.png"))

    page.click("#ink-list tr[data-name='plot.png'] td.name a")
    image = page.locator("#ink-preview-image")
    expect(image).to_be_visible()
    page.wait_for_function("document.getElementById('ink-preview-image').complete")
    assert image.evaluate("img => img.naturalWidth") == 64
    page.screenshot(path=str(output_dir / "files-preview-image.png"))

    with page.expect_response(lambda r: "paper.pdf" in r.url) as pdf_response:
        page.click("#ink-list tr[data-name='paper.pdf'] td.name a")
    assert pdf_response.value.status == 200
    assert pdf_response.value.headers["content-type"] == "application/pdf"
    # Chromium hands the PDF to its viewer; the bytes the viewer got are the file's
    assert page.request.get(pdf_response.value.url).body() == (home / "paper.pdf").read_bytes()
    expect(page.locator("#ink-preview-pdf")).to_be_visible()
    page.wait_for_timeout(1500)  # the viewer draws the page after it loads
    page.locator("#ink-preview-pdf").screenshot(path=str(output_dir / "files-preview-pdf.png"))

    # ROOT: keys listed by the server, histograms drawn by JSROOT from Range reads
    root_file(uploads / "sample.root")
    fits_file(uploads / "sample.fits")
    page.set_input_files("#ink-upload", [str(uploads / "sample.root"), str(uploads / "sample.fits")])
    expect(page.locator(".ink-upload[data-name='home/sample.fits']")).to_have_attribute("data-state", "done")
    ranges, xsrf_in_urls = [], []
    page.on(
        "request",
        lambda r: "sample.root" in r.url and r.headers.get("range") and ranges.append(r.headers["range"]),
    )
    page.on("request", lambda r: "xsrf" in r.url.lower() and xsrf_in_urls.append(r.url))
    page.click("#ink-list tr[data-name='sample.root'] td.name a")
    expect(page.locator("#ink-root-keys li[data-path='maps/deeper/hdeep']")).to_be_visible()
    page.click("#ink-root-keys li[data-path='hpx'] > a")
    drawing = page.locator("#ink-root-draw")
    expect(drawing).to_have_attribute("data-drawn", "hpx", timeout=30_000)
    bars = drawing.locator("svg path").evaluate_all(
        "ps => Math.max(...ps.map(p => (p.getAttribute('d') || '').length))"
    )
    assert bars > 200  # the histogram's 40 bins make one long path
    assert ranges and all(r.startswith("bytes=") for r in ranges)  # read in pieces, not whole
    assert not xsrf_in_urls, "the XSRF token travels in a header, never in a URL (logs, history)"
    page.screenshot(path=str(output_dir / "files-preview-root-hist.png"))
    page.click("#ink-root-keys li[data-branch='energy'] > a")
    expect(drawing).to_have_attribute("data-drawn", "events:energy", timeout=30_000)
    expect(drawing.locator("svg.root_canvas")).to_contain_text("energy")
    page.screenshot(path=str(output_dir / "files-preview-root-branch.png"))

    page.click("#ink-list tr[data-name='sample.fits'] td.name a")
    fits_image = page.locator("#ink-preview-fits")
    expect(fits_image).to_be_visible()
    page.wait_for_function("document.getElementById('ink-preview-fits').complete")
    assert fits_image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [300, 200]
    expect(page.locator(".ink-fits-header").first).to_contain_text("INK test field")
    page.screenshot(path=str(output_dir / "files-preview-fits.png"))

    # a share link, opened by someone who is not logged in
    page.once("dialog", lambda dialog: dialog.accept("1"))
    page.click("#ink-list tr[data-name='plot.png'] button:has-text('share')")
    url = page.locator("#ink-share-url").input_value()
    assert "/services/ink-files/s/" in url
    page.screenshot(path=str(output_dir / "files-share-made.png"))
    stranger = browser.new_context()
    other = stranger.new_page()
    other.goto(url)
    expect(other.locator("#ink-preview-image")).to_be_visible(timeout=20_000)
    other.wait_for_function("document.getElementById('ink-preview-image').complete")
    assert other.locator("#ink-preview-image").evaluate("img => img.naturalWidth") == 64
    other.screenshot(path=str(output_dir / "files-share-opened.png"))
    stranger.close()

    # and revoked by its owner: the stranger's link stops working
    page.click("#ink-shares")
    expect(page.locator("#ink-share-list tr")).to_have_count(1)
    page.click("#ink-share-list button:has-text('revoke')")
    expect(page.locator("#ink-share-list tr")).to_have_count(0)
    stranger = browser.new_context()
    response = stranger.new_page().goto(url)
    assert response.status == 404
    stranger.close()
    context.close()
