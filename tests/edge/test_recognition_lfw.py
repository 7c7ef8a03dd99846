"""Enrol two LFW people with the CLI, identify their other photos and strangers (real data)."""

import json

import pytest

from edge.cli import main

ENROLLED = ("Jennifer_Capriati", "Vicente_Fox")
STRANGERS = (
    "Winona_Ryder",
    "Jiang_Zemin",
    "Amelie_Mauresmo",
    "Tommy_Franks",
    "Nancy_Pelosi",
    "Pierce_Brosnan",
    "John_Bolton",
    "Gray_Davis",
    "Abdullah_Gul",
    "Carlos_Moya",
)


@pytest.mark.shared_data
def test_enrol_two_people_identify_them_and_a_stranger(capsys, tmp_path, lfw_dir):
    gallery = tmp_path / "household.npz"
    for name in ENROLLED:
        photos = [lfw_dir / name / f"{name}_{i:04d}.jpg" for i in range(1, 6)]
        assert (
            main(
                [
                    "enroll",
                    "--gallery",
                    str(gallery),
                    "--name",
                    name,
                    *map(str, photos),
                ]
            )
            == 0
        )
    capsys.readouterr()
    probes = {
        name: [lfw_dir / name / f"{name}_{i:04d}.jpg" for i in range(6, 16)] for name in ENROLLED
    }
    strangers = [lfw_dir / s / f"{s}_0001.jpg" for s in STRANGERS]
    argv = ["identify", "--gallery", str(gallery), "--json"]  # the default, shipped YuNet
    assert (
        main(argv + [str(p) for ps in probes.values() for p in ps] + [str(p) for p in strangers])
        == 0
    )
    records = {
        json.loads(line)["image"]: json.loads(line) for line in capsys.readouterr().out.splitlines()
    }

    def name_of(path):
        faces = records[str(path)]["faces"]
        return faces[0]["name"] if faces else "no face"

    for person, paths in probes.items():
        names = [name_of(p) for p in paths]
        assert names.count(person) >= 7, (person, names)  # at least 7 of 10 recognised
        assert all(n in (person, None) for n in names), (person, names)  # never the other person
    stranger_names = [name_of(p) for p in strangers]
    # Measured with the shipped model (0.885 on LFW): 8 of these 10 strangers are unknown, two
    # (Pierce Brosnan, Abdullah Gul) pass as Vicente Fox at 0.65-0.67 against a 0.645 threshold.
    # That is the model's real open-set limit (docs/MODEL.md); the daemon adds 3-frame
    # confirmation on top. This bar guards against it getting worse.
    assert stranger_names.count(None) >= 8, stranger_names
