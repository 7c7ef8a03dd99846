"""The whole face-library flow in a real headless Chromium, at a phone's screen size.

Sign in, create a person from uploaded photos, see them listed, recognise an uploaded photo,
name a group of unknown visitors, mark a wrong match "not X", delete a person, sign out.
Screenshots go to the test's temporary folder; with DOORFACE_UPDATE_SCREENSHOTS=1 they
replace docs/web_people.png and docs/web_visits.png (used in the README), so a test run never
edits tracked files.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import pytest

from edge.gallery import Gallery

from .conftest import PASSWORD, Web
from .webdriver import Browser, find_browser

DOCS = Path(__file__).resolve().parents[3] / "docs"


def _shots(tmp_path: Path) -> Path:
    """Where screenshots go: docs/ when asked to update them, else the test's tmp folder."""
    return DOCS if os.environ.get("DOORFACE_UPDATE_SCREENSHOTS") == "1" else tmp_path


PHONE = (412, 915)


@pytest.fixture
def browser(tmp_path):
    found = find_browser()
    if found is None:
        message = "chromium and chromium-driver are not installed (scripts/test.sh installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    b = Browser(*found, tmp_path / "profile", *PHONE)
    try:
        yield b
    finally:
        b.quit()


@pytest.mark.slow
def test_face_library_in_a_real_browser(web: Web, browser: Browser, faces, tmp_path):
    from edge.demo import packaged_faces

    photos = []
    for i, image in enumerate(faces["eileen"]):
        photos.append(tmp_path / f"eileen{i}.jpg")
        cv2.imwrite(str(photos[-1]), image)
    b, url = browser, web.url

    # sign in (any page sends a stranger to the sign-in page first)
    b.get(url + "/people")
    assert b.url.endswith("/login")
    b.type(b.find("#password"), PASSWORD)
    b.click(b.find("#signin"))
    b.find("img#live")
    assert b.url.endswith("/live")

    # create a person from three uploaded photos; see them listed
    b.get(url + "/people")
    b.type(b.find("#new-name"), "Eileen")
    b.attach(b.find("#new-photos"), photos[:3])
    b.click(b.find("#add-button"))
    assert "Eileen: 3 photos enrolled" in b.wait_text("#flash", "enrolled")
    assert len(b.find_all("#photos img.face")) == 3
    b.get(url + "/people")
    assert "3 photos" in b.text(b.find('li.person[data-name="Eileen"]'))

    # recognise an uploaded photo of her
    b.get(url + "/recognize")
    b.attach(b.find("#recognize-photo"), [photos[3]])
    b.click(b.find("#recognize-button"))
    assert b.wait_text("#result .who", "Eileen") == "Eileen"

    # two unknown visits of another face arrive through the daemon's hook: name the group
    for image in faces["grace"][:2]:
        web.record_visit(image, None, 0.21)
    b.get(url + "/unknown")
    assert len(b.find_all("form.group")) == 1
    assert len(b.find_all("form.group img.face")) == 2
    b.type(b.find("form.group .name-input"), "Grace")
    b.click(b.find("form.group .name-button"))
    assert "Grace: 2 faces enrolled" in b.wait_text("#flash", "enrolled")
    assert b.find_all("#no-groups")

    # a visit wrongly named Eileen: "Not Eileen" keeps that face as a negative example
    stranger = packaged_faces()[1][1]
    web.record_visit(stranger, "Eileen", 0.61)
    b.get(url + "/visits")
    b.click(b.find(".not-button"))
    assert "not Eileen" in b.wait_text("#flash", "Noted")
    gallery = Gallery.load(web.cfg.recognition.gallery)
    assert gallery.negative_names.tolist() == ["Eileen"]
    b.screenshot(_shots(tmp_path) / "web_visits.png")
    b.get(url + "/people")
    b.find('li.person[data-name="Grace"] img.face')
    b.screenshot(_shots(tmp_path) / "web_people.png")
    assert (_shots(tmp_path) / "web_people.png").stat().st_size > 10_000  # a rendered page

    # delete a person (confirm dialog), then sign out
    b.get(url + "/people/Grace")
    b.click(b.find("#delete-person"))
    assert "Delete Grace" in b.accept_alert()
    assert "Deleted Grace" in b.wait_text("#flash", "Deleted")
    assert [b.text(e).split("\n")[0] for e in b.find_all("li.person strong")] == ["Eileen"]
    assert Gallery.load(web.cfg.recognition.gallery).people == ["Eileen"]
    b.click(b.find("#signout"))
    b.find("#password")
    b.get(url + "/people")
    assert b.url.endswith("/login")
