"""Jupyter Server warns about extension endpoints without an authentication decorator
(`JupyterServerAuthWarning`); the extension template's CI fails on any. Ours must raise none."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHECK = """
import json, warnings
from jupyter_server.serverapp import ServerApp

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    app = ServerApp(allow_unauthenticated_access=False, reraise_server_extension_failures=True)
    app.jpserver_extensions = {"jupyter_ucloud": True}
    app.initialize(argv=["--port=0", "--ip=127.0.0.1", "--allow-root", "--no-browser",
                         "--UCloud.host=http://127.0.0.1:9"])
    routes = [
        sub.matcher.regex.pattern
        for rule in app.web_app.default_router.rules
        for sub in getattr(rule.target, "rules", [])
        if getattr(sub.matcher, "regex", None) is not None
    ]
auth = [str(w.message) for w in caught if type(w.message).__name__ == "JupyterServerAuthWarning"]
print(json.dumps({"auth_warnings": auth, "routes": routes}))
"""


def test_no_extension_endpoint_lacks_an_authentication_decorator(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    ucloud_routes = [route for route in result["routes"] if "/ucloud" in route]
    assert ucloud_routes, "the extension registered no /ucloud routes"
    offending = [warning for warning in result["auth_warnings"] if "ucloud" in warning.lower()]
    assert offending == [], offending
