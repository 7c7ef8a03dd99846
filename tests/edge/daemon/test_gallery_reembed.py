"""A daemon whose gallery was made by another model re-embeds it from the stored 112 px crops by
itself: one INFO line, the file saved in place (0600, the new model's id), the person recognised."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat

import numpy as np
import pytest

from edge.daemon import config
from edge.daemon.loop import Daemon
from edge.embedder import Embedder
from edge.gallery import STORED_CROP_SIZE, Gallery

from .door import config_file


@pytest.fixture(scope="module")
def other_model(tmp_path_factory):
    """A second tiny int8 model, at another input size (48 px), hence another model id."""
    from tests.model_factory import make_tiny_int8_model

    return make_tiny_int8_model(tmp_path_factory.mktemp("other-model"), input_size=48)


def test_a_gallery_of_another_model_is_re_embedded_and_recognises(
    tmp_path, door_video, other_model, caplog, capsys
):
    gallery = tmp_path / "gallery.npz"
    shutil.copy(door_video["gallery"], gallery)
    old = Gallery.load(gallery)
    new_id = Embedder(other_model).model_id
    assert old.model_id != new_id and old.crop_size == STORED_CROP_SIZE
    door = {**door_video, "gallery": gallery, "model": other_model}
    cfg = config.load(config_file(tmp_path, door))
    with caplog.at_level(logging.INFO):
        daemon = Daemon(cfg)  # stdout sink: one JSON line per event
    assert daemon.gallery_error == ""
    lines = [r.getMessage() for r in caplog.records if "re-embedded" in r.getMessage()]
    assert len(lines) == 1 and re.fullmatch(
        rf"gallery: re-embedded {len(old)} crops of 1 people from model {old.model_id[:12]} "
        rf"to {new_id[:12]} in \d+\.\d s",
        lines[0],
    )
    saved = Gallery.load(gallery)
    assert saved.model_id == new_id and stat.S_IMODE(os.stat(gallery).st_mode) == 0o600
    np.testing.assert_array_equal(saved.crops, old.crops)

    assert daemon.run() == 0  # the video ends: the daemon stops
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert any(e["type"] == "recognized" and e["person"] == "astronaut" for e in events), events
