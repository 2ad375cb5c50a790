"""`casetrack audit …`: the tamper-evident log's key, checkpoints, verification and proofs
(docs/integrity.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adapters import bootstrap
from adapters.cli.usage import UsageError


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="tamper evidence: keys, checkpoints, proofs")
    commands = audit.add_subparsers(required=True, metavar="AUDIT_COMMAND")
    keygen = commands.add_parser(
        "keygen", help="create the checkpoint signing key (CASETRACK_SIGNING_KEY)"
    )
    keygen.add_argument(
        "--name", default=None, help="the log's name, the origin line of its checkpoints"
    )
    keygen.set_defaults(run=cmd_keygen)
    commands.add_parser(
        "public-key", help="print the verifier key auditors check checkpoints with"
    ).set_defaults(run=cmd_public_key)
    commands.add_parser(
        "checkpoint", help="sign a checkpoint of the log now (if it grew) and print it"
    ).set_defaults(run=cmd_checkpoint)
    add_export(commands)
    add_verify_bundle(commands)


def cmd_keygen(args: argparse.Namespace) -> int:
    from adapters import signing_key

    path = args.settings.signing_key_file
    try:
        verifier = signing_key.create(path, args.name or signing_key.DEFAULT_NAME)
    except signing_key.SigningKeyError as e:
        print(f"casetrack: {e}", file=sys.stderr)
        return 1
    print(f"signing key written to {path} (keep it secret, back it up)", file=sys.stderr)
    print(verifier)
    return 0


def cmd_public_key(args: argparse.Namespace) -> int:
    from adapters import signing_key

    try:
        print(signing_key.verifier(args.settings.signing_key_file))
    except signing_key.SigningKeyError as e:
        print(f"casetrack: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from adapters import signing_key
    from adapters.postgres.integrity_log import LogRewritten

    try:
        signer = signing_key.signer(args.settings.signing_key_file)
    except signing_key.SigningKeyError as e:
        print(f"casetrack: {e}", file=sys.stderr)
        return 1
    store = bootstrap.case_store(args.settings)
    try:
        checkpoint, new = store.integrity.checkpoint(signer)
    except LogRewritten as e:
        print(f"casetrack: refusing to sign: {e}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if not new:
        print(f"the log has not grown since checkpoint {checkpoint.size}", file=sys.stderr)
    sys.stdout.write(checkpoint.note)
    return 0


def add_export(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = commands.add_parser(
        "export",
        help="print the proof bundle of applications (events, hashes, proofs, checkpoint)",
        description="Print the proof bundle of these applications under the latest checkpoint"
        " (JSON, format casetrack-proof-bundle/1): auditors check it offline with"
        " `casetrack audit verify-bundle`. Events stored after that checkpoint are left out and"
        " counted (run `casetrack audit checkpoint` first to include them).",
    )
    export.add_argument("application_numbers", nargs="+", metavar="APPLICATION_NUMBER")
    export.add_argument(
        "--since",
        type=_size,
        default=None,
        metavar="SIZE",
        help="add the consistency proof from the checkpoint of this size (the one you kept)",
    )
    export.set_defaults(run=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    import orjson

    from adapters.postgres.proof_bundles import ExportError, export_bundle
    from domain import application_number as numbers

    bad = [n for n in args.application_numbers if not numbers.is_valid(n)]
    if bad:
        raise UsageError("APPLICATION_NUMBER must be one uppercase letter and nine digits")
    store = bootstrap.case_store(args.settings)
    try:
        bundle = export_bundle(store.integrity, args.application_numbers, args.since)
    except ExportError as e:
        print(f"casetrack: {e}", file=sys.stderr)
        return 1
    finally:
        store.close()
    for case in bundle["cases"]:
        if case["uncovered_events"]:
            print(
                f"note: {case['application_number']}: {case['uncovered_events']} events stored"
                " after the latest checkpoint are not in the bundle; run `casetrack audit"
                " checkpoint` first to include them",
                file=sys.stderr,
            )
    sys.stdout.buffer.write(orjson.dumps(bundle) + b"\n")
    return 0


def add_verify_bundle(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = commands.add_parser(
        "verify-bundle",
        help="check a proof bundle offline (no database, no configuration)",
        description="Check a proof bundle against the log's public key, and with --checkpoint"
        " that its checkpoint extends one you kept. Reads no database and no CASETRACK_*"
        " setting. Exit 0 when every check passes, 1 naming the first that fails.",
    )
    verify.add_argument("bundle", metavar="BUNDLE", help="the bundle's file, or - for stdin")
    verify.add_argument(
        "--public-key",
        required=True,
        metavar="KEY_OR_FILE",
        help="the verifier key (`casetrack audit public-key`), or a file holding it",
    )
    verify.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        metavar="OLDER_FILE",
        help="a checkpoint note you kept: prove the bundle's checkpoint extends it",
    )
    verify.set_defaults(run=cmd_verify_bundle, configured=False)


def cmd_verify_bundle(args: argparse.Namespace) -> int:
    from domain.application_number import case_id
    from domain.integrity.bundle import BundleError, verify_bundle

    vkey = _verifier_key(args.public_key)
    try:
        data = sys.stdin.buffer.read() if args.bundle == "-" else Path(args.bundle).read_bytes()
        older = args.checkpoint.read_text() if args.checkpoint is not None else None
    except (OSError, UnicodeDecodeError) as e:
        print(f"casetrack: cannot read {getattr(e, 'filename', None) or 'the checkpoint'}: {e}",
              file=sys.stderr)  # fmt: skip
        return 1
    try:
        report = verify_bundle(data, vkey, older, case_id_of=case_id)
    except BundleError as e:
        print(f"casetrack: bundle refused: {e}", file=sys.stderr)
        return 1
    checkpoint = report.checkpoint
    print(
        f"bundle verified: {len(report.cases)} cases, {report.events} events, checkpoint of"
        f" {checkpoint.origin} at size {checkpoint.size}"
    )
    for case in report.cases:
        versions = f"versions 1..{case.events}" if case.events else "no events covered yet"
        print(f"  {case.application_number or case.case_id}: {versions}")
    if report.consistent_with is not None:
        print(f"the checkpoint extends the kept checkpoint of size {report.consistent_with}")
    if report.uncovered_events:
        print(
            f"note: {report.uncovered_events} later events were not covered by this checkpoint"
            " and are not in the bundle"
        )
    return 0


def _verifier_key(value: str) -> str:
    """KEY_OR_FILE: a verifier key as it is, else the key in the file of that name."""
    from domain.integrity.checkpoint import NoteError, parse_vkey

    try:
        return parse_vkey(value).vkey
    except NoteError:
        pass
    try:
        text = Path(value).read_text().strip()
        return parse_vkey(text).vkey
    except (OSError, UnicodeDecodeError, NoteError):
        raise UsageError(
            "--public-key must be a verifier key (`casetrack audit public-key`) or a file"
            " holding one"
        ) from None


def _size(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("SIZE must be a whole number") from None
    if size < 0:
        raise argparse.ArgumentTypeError("SIZE must be a whole number")
    return size
