"""``python -m bench._profiled OUT.prof -m MODULE ARGS...``: run a module under cProfile.

The profile counts CPU time (``time.process_time``), not wall time, so a busy machine
does not inflate system calls that merely waited for a core. Used by the SFU and relay
benchmarks when ``PARTA_BENCH_PROFILE`` names a directory: the server process writes
``<name>.prof`` there when it exits (``python -m pstats`` reads it).
"""

import cProfile
import runpy
import sys
import time


def main() -> None:
    if len(sys.argv) < 4 or sys.argv[2] != "-m":
        raise SystemExit(__doc__.split("\n")[0])
    out, module = sys.argv[1], sys.argv[3]
    sys.argv = [module, *sys.argv[4:]]
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit:
        pass
    finally:
        profile.disable()
        profile.dump_stats(out)


if __name__ == "__main__":
    main()
