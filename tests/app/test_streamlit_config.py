"""The app runs with streamlit_config.toml, bound to loopback."""
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_streamlit_reads_the_project_config_and_binds_loopback():
    linked = ROOT / ".streamlit" / "config.toml"
    assert linked.resolve() == (ROOT / "streamlit_config.toml").resolve()
    config = tomllib.loads((ROOT / "streamlit_config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    # what Streamlit itself resolves when started from the repository root
    code = ("from streamlit import config; config.get_config_options(force_reparse=True); "
            "print(config.get_option('server.address'), config.get_option('theme.primaryColor'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["127.0.0.1", config["theme"]["primaryColor"]]
