"""``python -m bench`` lists the measurements; ``python -m bench NAME [ARGS]`` runs one."""

import pkgutil
import subprocess
import sys
from pathlib import Path


def names() -> list[str]:
    """Modules that run as a measurement (the others are shared pieces)."""
    here = Path(__file__).parent
    return sorted(
        m.name
        for m in pkgutil.iter_modules([str(here)])
        if not m.name.startswith("_")
        and 'if __name__ == "__main__"' in (here / f"{m.name}.py").read_text(encoding="utf-8")
    )


def main() -> int:
    if len(sys.argv) < 2:
        print("Measurements (python -m bench NAME [ARGS]; figures go to docs/benchmarks.md):")
        for name in names():
            doc = (Path(__file__).parent / f"{name}.py").read_text(encoding="utf-8")
            first = doc.split('"""')[1].strip().splitlines()[0] if '"""' in doc else ""
            print(f"  {name:28s} {first}")
        return 0
    name = sys.argv[1]
    if name not in names():
        print(f"no such measurement: {name}; try: {', '.join(names())}", file=sys.stderr)
        return 2
    # Its own interpreter, as ``python -m bench.NAME``: a measurement that starts
    # processes with multiprocessing's spawn finds its functions in its own __main__.
    return subprocess.call([sys.executable, "-m", f"bench.{name}", *sys.argv[2:]])


if __name__ == "__main__":
    sys.exit(main())
