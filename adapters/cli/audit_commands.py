"""`casetrack audit …`: the tamper-evident log's key, checkpoints, verification and proofs
(docs/integrity.md)."""

from __future__ import annotations

import argparse
import sys

from adapters import bootstrap


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
