"""INK's service pages wear the hub's page: its stylesheet and dark mode, its navigation bar."""

from ink_services.app import hub_look, nav_bar


def test_the_bar_leads_back_to_the_hub_and_marks_the_page(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_BASE_URL", "/ink/")
    bar = nav_bar("alice", "files")
    assert 'href="/ink/hub/home"' in bar and 'href="/ink/hub/logout"' in bar
    assert 'active" aria-current="page" id="ink-nav-files" href="/ink/services/ink-files/"' in bar
    assert bar.count("aria-current") == 1  # only the page shown is marked
    assert 'id="dark-theme-toggle"' in bar and "alice" in bar


def test_a_visitor_without_a_login_gets_the_brand_and_the_toggle_only():
    bar = nav_bar()
    assert "logout" not in bar and "ink-nav-" not in bar and 'id="dark-theme-toggle"' in bar


def test_a_name_is_escaped():
    assert "<b>" not in nav_bar("<b>x</b>")


def test_the_hub_stylesheet_and_dark_mode(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_BASE_URL", "/")
    page = hub_look("/services/ink-files/")
    assert '/hub/static/css/style.min.css"' in page and "/hub/static/js/darkmode.js" in page
    assert "/services/ink-files/static/ink/ink-page.css" in page and "ink-api.js" in page
    framed = hub_look("/services/ink-dashboard/", framed=True)
    assert "darkmode.js" not in framed and "jupyterhub-bs-theme" in framed


def test_app_pages_in_a_job_link_to_the_hub_by_its_full_url(monkeypatch):
    from ink_core import pagelook

    monkeypatch.setenv("INK_HUB", "https://ink.example.org/ink")
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    hub, user = pagelook.in_job()
    bar, look = pagelook.nav_bar(hub, user), pagelook.hub_look(hub)
    assert 'href="https://ink.example.org/ink/hub/home"' in bar and "alice" in bar
    assert 'href="https://ink.example.org/ink/hub/static/css/style.min.css"' in look
    assert "ink-page.css" not in look  # a service's own files are not on the user's origin
