"""Write the tracker API's OpenAPI document to docs/openapi.json (tests fail when it is stale).

python scripts/export_openapi.py          # rewrite docs/openapi.json
python scripts/export_openapi.py --check  # exit 1 if it differs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from adapters.http.app import openapi_document

ROOT = Path(__file__).resolve().parent.parent

TARGET = ROOT / "docs" / "openapi.json"


def rendered() -> str:
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    text = rendered()
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run python scripts/export_openapi.py")
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
