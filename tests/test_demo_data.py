import json

import pytest

from denoiselab.training.data.demo_corpus import NOISE_TYPES, generate, sentences

pytest.importorskip("espeakng_loader")


def test_demo_corpus_is_deterministic_and_labelled(tmp_path):
    a = json.loads((generate(tmp_path / "a", "tiny", seed=3) / "manifest.json").read_text())["files"]
    b = json.loads((generate(tmp_path / "b", "tiny", seed=3) / "manifest.json").read_text())["files"]
    assert a == b
    assert {p.name for p in (tmp_path / "a" / "train" / "noise").iterdir()} == set(NOISE_TYPES)


def test_splits_share_no_sentence_and_no_noise_file(tmp_path):
    pool = sentences(0)
    assert len(pool) == len(set(pool))
    files = json.loads((generate(tmp_path / "c", "tiny", seed=0) / "manifest.json").read_text())["files"]
    by_split = {}
    for rel, digest in files.items():
        split, kind = rel.split("/")[:2]
        if kind in ("clean", "noise"):
            by_split.setdefault(split, set()).add(digest)
    assert not by_split["train"] & by_split["val"] and not by_split["train"] & by_split["test"]
