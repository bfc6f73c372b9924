"""The landing page's committed picture is what the library draws today."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "landing_figure.py"


def test_committed_svg_is_up_to_date():
    result = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_fails_on_a_changed_file(tmp_path, monkeypatch):
    sys.path.insert(0, str(TOOL.parent))
    try:
        import landing_figure
    finally:
        sys.path.remove(str(TOOL.parent))
    stale = tmp_path / "thinned_networks.svg"
    stale.write_bytes(landing_figure.render().replace(b"</svg>", b"<!-- edited --></svg>"))
    monkeypatch.setattr(landing_figure, "TARGET", stale)
    monkeypatch.setattr(landing_figure, "ROOT", tmp_path)
    assert landing_figure.main(["--check"]) == 1
