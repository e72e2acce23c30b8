"""Put Relay's source folders on the venv's path with a .pth file.

An editable install maps only the packages that existed when it ran; this lets a new
`services/<name>/relay_<name>` be importable (by tests and `task dev`) without reinstalling.
"""

import pathlib
import sysconfig

root = pathlib.Path(__file__).resolve().parents[2]
dirs = [root / "libs", *sorted(p for p in (root / "services").iterdir() if p.is_dir())]
target = pathlib.Path(sysconfig.get_paths()["purelib"]) / "relay-src.pth"
target.write_text("".join(f"{d}\n" for d in dirs))
print(f"wrote {target}")
