"""The demo trains to >= 97% test accuracy and writes its pictures."""
from __future__ import annotations

import re
import sys

import pytest

from convext import demo

PICTURES = ("training_curves.png", "first_layer_filters.png", "feature_maps.png")


def test_demo_default_settings_reach_97_percent(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pictures"
    assert demo.main(["--out", str(out)]) == 0
    captured = capsys.readouterr()
    last = captured.out.strip().splitlines()[-1]
    match = re.fullmatch(r"test accuracy: (\d\.\d{4})", last)
    assert match, f"last line was {last!r}"
    assert float(match.group(1)) >= 0.97
    assert "epoch" in captured.err and "loss" in captured.err  # the progress bars
    for name in PICTURES:
        path = out / name
        assert path.is_file() and path.stat().st_size > 1000, name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_missing_dependency_says_how_to_install(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes "import tqdm" raise ImportError
    assert demo.main(["--epochs", "1"]) == 1
    assert 'pip install "convext[demo]"' in capsys.readouterr().err


def test_demo_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        demo.main(["--epochs", "0"])
    assert "--epochs" in capsys.readouterr().err
