"""python -m expensura_ops.deploycheck [REPO [DEPLOY_DIR]]: exit 1 and name every problem,
or exit 0. DEPLOY_DIR defaults to REPO/deploy (the tests point it at a broken copy)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from expensura_ops.deploycheck import run


def main() -> int:
    repo = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    started = time.perf_counter()
    deploy = Path(sys.argv[2]).resolve() if len(sys.argv) > 2 else None
    report = run(repo, deploy)
    for line in report.checked:
        print(f"ok    {line}")
    for problem in report.problems:
        print(f"FAIL  {problem}")
    elapsed = time.perf_counter() - started
    verdict = "passed" if report.ok else f"failed: {len(report.problems)} problem(s)"
    print(f"deploy-check {verdict} in {elapsed:.1f} s")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
