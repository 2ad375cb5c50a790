"""Write docs/case-event.schema.json from the pydantic contract; --check fails if stale."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from consumers.contract import json_schema

ROOT = Path(__file__).resolve().parent.parent

TARGET = ROOT / "docs" / "case-event.schema.json"


def render() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args()
    expected = render()
    if args.check:
        if not TARGET.exists() or TARGET.read_text() != expected:
            print(f"{TARGET.relative_to(ROOT)} is stale: run `make schema`", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(expected)
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
