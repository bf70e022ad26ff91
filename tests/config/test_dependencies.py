"""Dependencies point one way (pyproject.toml, ``[tool.importlinter]``): the site and the demo app use
mcpapp, mcpapp uses authserver, never the reverse; the product imports no site, demo, test or
benchmark code; benchmarks and tests share only the live harness."""

import subprocess
import sys
from pathlib import Path

from live.server import PROJECT_DIR


def test_every_import_contract_is_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout and "BROKEN" not in done.stdout
