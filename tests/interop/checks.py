"""What the Python test scripts here share: each check prints 'ok' or 'FAIL' with its name, and the
last line is 'N passed, N failed' (the exit status is 1 if any failed)."""
import sys

_passed = 0
_failures = []


def check(name, ok, detail=""):
    global _passed
    print(f"{'ok  ' if ok else 'FAIL'} {name} {detail}")
    if ok:
        _passed += 1
    else:
        _failures.append(name)


def finish():
    print(f"{_passed} passed, {len(_failures)} failed")
    sys.exit(1 if _failures else 0)
