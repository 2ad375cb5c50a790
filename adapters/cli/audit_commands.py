"""`casetrack audit …`: the tamper-evident log's key, checkpoints, verification and proofs
(docs/integrity.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from adapters import bootstrap
from adapters.cli.usage import UsageError

if TYPE_CHECKING:
    from adapters.postgres.checkpoints import StoredCheckpoint
    from adapters.postgres.log_epochs import Epoch
    from domain.integrity.verify import Finding, LogReport


MAX_WORKERS = 64


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
    checkpoint = commands.add_parser(
        "checkpoint", help="sign a checkpoint of the log now (if it grew) and print it"
    )
    checkpoint.add_argument(
        "--after-rotation",
        action="append",
        default=[],
        metavar="OLD_KEY_OR_FILE",
        help="the verifier key the latest checkpoint was signed with before the signing key"
        " was rotated (docs/integrity.md); needed once, for the new key's first checkpoint",
    )
    checkpoint.set_defaults(run=cmd_checkpoint)
    add_export(commands)
    add_verify_bundle(commands)
    verify = commands.add_parser(
        "verify",
        help="recompute every leaf, chain and the tree; name the first altered spot",
        description="Recompute every stored event's leaf, each case's chain and the log's"
        " Merkle tree, and check them against the event_hashes table, the stored checkpoints"
        " and any checkpoint kept elsewhere (--checkpoint). Exit 0 when all match; 1 with"
        " the first altered spot named.",
    )
    verify.add_argument(
        "--application",
        nargs="+",
        default=[],
        metavar="NUMBER",
        help="only these applications' events, leaves and chains (the tree needs the whole log)",
    )
    verify.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="a signed checkpoint kept earlier: the log must still yield its root (repeatable)",
    )
    verify.add_argument(
        "--public-key",
        action="append",
        metavar="KEY_OR_FILE",
        help="a verifier key checkpoints are checked with, or a file holding one; repeat it"
        " to accept each key the log signed with (after a rotation: the old one and the new"
        " one). Every stored checkpoint must verify under one of them. Default: the signing"
        " key's (CASETRACK_SIGNING_KEY)",
    )
    verify.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        help=f"processes recomputing leaves side by side, 1 to {MAX_WORKERS} (default: one per"
        " core on large logs)",
    )
    verify.add_argument(
        "--progress", action="store_true", help="a progress bar on stderr even off a terminal"
    )
    verify.add_argument("--json", action="store_true", help="the result as one JSON line")
    verify.set_defaults(run=cmd_verify)


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
    from adapters.postgres.integrity_log import LogBeingRewritten, LogRewritten

    try:
        signer = signing_key.signer(args.settings.signing_key_file)
    except signing_key.SigningKeyError as e:
        print(f"casetrack: {e}", file=sys.stderr)
        return 1
    previous = [_public_key(key) for key in args.after_rotation]
    store = bootstrap.case_store(args.settings)
    try:
        checkpoint, new = store.integrity.checkpoint(signer, previous)
    except (LogRewritten, LogBeingRewritten) as e:
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
        action="append",
        metavar="KEY_OR_FILE",
        help="the verifier key (`casetrack audit public-key`), or a file holding it; repeat"
        " it to accept each key the log signed with (the old one and the new one after a"
        " rotation)",
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

    vkeys = _public_keys(args.public_key)
    try:
        data = sys.stdin.buffer.read() if args.bundle == "-" else Path(args.bundle).read_bytes()
        older = args.checkpoint.read_text() if args.checkpoint is not None else None
    except (OSError, UnicodeDecodeError) as e:
        print(f"casetrack: cannot read {getattr(e, 'filename', None) or 'the checkpoint'}: {e}",
              file=sys.stderr)  # fmt: skip
        return 1
    try:
        report = verify_bundle(data, vkeys, older, case_id_of=case_id)
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


def _public_keys(values: Sequence[str]) -> list[str]:
    """Every --public-key given, each once, in order."""
    return list(dict.fromkeys(_public_key(value) for value in values))


def _public_key(value: str) -> str:
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


def _workers(text: str) -> int:
    try:
        workers = int(text)
    except ValueError:
        workers = 0
    if not 1 <= workers <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"N must be a whole number from 1 to {MAX_WORKERS}")
    return workers


def _size(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("SIZE must be a whole number") from None
    if size < 0:
        raise argparse.ArgumentTypeError("SIZE must be a whole number")
    return size


def cmd_verify(args: argparse.Namespace) -> int:
    from domain.integrity.verify import LogTampered

    cases = _cases(args.application)
    if cases and args.checkpoint:
        raise UsageError("--checkpoint covers the whole log: leave out --application")
    vkeys = _verify_keys(args.public_key, args.settings.signing_key_file)
    if args.checkpoint and not vkeys:
        raise UsageError(
            "a kept checkpoint is checked with the log's verifier key: give --public-key"
        )
    notes: list[str] = []
    kept = [_kept_checkpoint(path, vkeys) for path in args.checkpoint]
    store = bootstrap.case_store(args.settings)
    try:
        checkpoints, bad = _outside_retired(kept, store.integrity.retirements(), vkeys, notes)
        if bad is not None:
            return _failed(bad, args.json)
        if not cases:
            stored, bad = _stored_checkpoints(store.integrity.all_checkpoints(), vkeys, notes)
            if bad is not None:
                return _failed(bad, args.json)
            checkpoints = sorted(set(checkpoints + stored))
        total = store.integrity.size() if not cases else None
        started = time.perf_counter()
        with _progress(total, args.progress) as progress:
            try:
                report = store.integrity.verify(
                    cases or None, checkpoints, progress, workers=args.workers
                )
            except LogTampered as tampered:
                return _failed(tampered.finding, args.json)
        elapsed = time.perf_counter() - started
    finally:
        store.close()
    if cases:
        notes.append(
            "only these applications' leaves and chains were checked: the Merkle tree and the"
            " checkpoints cover the whole log (run without --application)"
        )
        if report.cases < len(set(cases)):
            notes.append(
                f"{_count(len(set(cases)) - report.cases, 'application')} of those given"
                " had no events"
            )
    elif checkpoints:
        if report.size is not None and report.size > checkpoints[-1][0]:
            notes.append(
                f"the last {report.size - checkpoints[-1][0]:,} events are not covered by a"
                " checkpoint yet"
            )
    elif not notes:  # (when stored checkpoints went unused, a note says so already)
        notes.append(
            "no checkpoint to check the tree against: a rewrite of the whole history would"
            " go unnoticed (`casetrack audit checkpoint` signs one)"
        )
    _print_report(report, elapsed, len(kept), notes, args.json)
    return 0


def _cases(numbers: Sequence[str]) -> list[UUID]:
    from domain import application_number

    for number in numbers:
        if not application_number.is_valid(number):
            raise UsageError(f"{number!r} is not an application number (a letter and 9 digits)")
    return [application_number.case_id(number) for number in numbers]


def _verify_keys(given: Sequence[str] | None, signing_key_file: Path) -> list[str]:
    """The accepted verifier keys: every --public-key (a verifier key, or a file holding
    one), else the signing key's; none when neither is at hand (an auditor's machine
    without --public-key)."""
    from adapters import signing_key

    if given:
        return _public_keys(given)
    try:
        return [signing_key.verifier(signing_key_file)]
    except signing_key.SigningKeyError:
        return []


def _kept_checkpoint(path: Path, vkeys: Sequence[str]) -> tuple[int, bytes]:
    from domain.integrity.checkpoint import NoteError, verify_checkpoint_any

    try:
        note = path.read_bytes()
    except OSError as error:
        raise UsageError(f"--checkpoint {path}: {error.strerror}") from None
    try:
        checkpoint = verify_checkpoint_any(note, vkeys)
    except NoteError as error:
        raise UsageError(f"--checkpoint {path} does not verify: {error}") from None
    return checkpoint.size, checkpoint.root


def _outside_retired(
    kept: Sequence[tuple[int, bytes]],
    retirements: Sequence[tuple[Epoch, Sequence[StoredCheckpoint]]],
    vkeys: Sequence[str],
    notes: list[str],
) -> tuple[list[tuple[int, bytes]], Finding | None]:
    """The kept checkpoints of the log's current epoch; each one a signed rewrite retired
    (domain/integrity/epochs.py) is named in `notes` instead: the log verified against it
    when the rewrite began, and no proof can cross the rewrite. A retirement whose
    transition note does not verify, or does not commit to the retired checkpoints kept
    beside it, is a finding."""
    from domain.integrity.checkpoint import NoteError
    from domain.integrity.epochs import retired_digest, verify_transition
    from domain.integrity.verify import Finding, FindingKind

    current = list(kept)
    for epoch, retired in retirements:
        ours = [k for k in current if k in {(c.size, c.root) for c in retired}]
        if not ours:
            continue
        transition = None
        for vkey in vkeys:
            try:
                transition = verify_transition(epoch.note or "", vkey)
                break
            except NoteError:
                continue
        if (
            transition is None
            or transition.epoch != epoch.epoch
            or (transition.retired, transition.retired_sha256)
            != (len(retired), retired_digest([c.note for c in retired]))
        ):
            return current, Finding(
                FindingKind.CHECKPOINT_MISMATCH,
                f"checkpoint {ours[0][0]} is listed as retired by the rewrite into epoch"
                f" {epoch.epoch}, but that rewrite's transition note is missing, not signed"
                " by an accepted key, or does not commit to the retired checkpoints: the"
                " log_epochs or retired_checkpoints table was altered",
            )
        for size, _root in ours:
            current.remove((size, _root))
            notes.append(
                f"kept checkpoint {size:,} is of epoch {epoch.epoch - 1}, retired when the"
                f" log was rewritten into epoch {epoch.epoch} on {epoch.began_at:%Y-%m-%d}"
                f" ({epoch.reason}, signed): the log verified against it before the"
                " rewrite; no proof crosses a rewrite (docs/privacy.md)"
            )
    return current, None


def _stored_checkpoints(
    stored: Sequence[StoredCheckpoint], vkeys: Sequence[str], notes: list[str]
) -> tuple[list[tuple[int, bytes]], Finding | None]:
    """The (size, root) of each stored checkpoint, as its signed note says (the row's
    columns are not signed), or the finding that one is not a note signed by an accepted
    key for this log, or that its row differs from its note. Without a key none are used
    (an unsigned row proves nothing), and stderr says so loudly."""
    from domain.integrity.checkpoint import NoteError, verify_checkpoint_any
    from domain.integrity.verify import Finding, FindingKind

    if not stored:
        return [], None
    if not vkeys:
        unchecked = (
            "1 stored checkpoint was"
            if len(stored) == 1
            else f"{len(stored):,} stored checkpoints were"
        )
        print(
            f"casetrack: WARNING: {unchecked} NOT checked: no verifier key to check their"
            " signatures with (give --public-key, or CASETRACK_SIGNING_KEY); the tree was"
            " checked against no checkpoint, so a rewritten history would pass",
            file=sys.stderr,
        )
        notes.append(
            f"{_count(len(stored), 'stored checkpoint')} not used: no verifier key to check"
            " signatures with (--public-key, or CASETRACK_SIGNING_KEY), so the tree was"
            " checked against no checkpoint"
        )
        return [], None
    good: list[tuple[int, bytes]] = []
    for row in stored:
        try:
            checkpoint = verify_checkpoint_any(row.note, vkeys)
        except NoteError as error:
            return good, Finding(
                FindingKind.CHECKPOINT_MISMATCH,
                f"the stored checkpoint at size {row.size} does not verify ({error}): the"
                " checkpoints table was altered or the note signed by another key (after a"
                " key rotation, accept each key the log signed with: --public-key OLD"
                " --public-key NEW)",
            )
        if (checkpoint.size, checkpoint.root) != (row.size, row.root):
            return good, Finding(
                FindingKind.CHECKPOINT_MISMATCH,
                f"the checkpoints row at size {row.size} differs from its signed note (size"
                f" {checkpoint.size}): the checkpoints table was altered",
            )
        good.append((checkpoint.size, checkpoint.root))
    return good, None


@contextmanager
def _progress(total: int | None, forced: bool) -> Iterator[Callable[[int], None] | None]:
    """Progress on stderr: a bar on a terminal; with --progress elsewhere (a log file), a
    line at every tenth of the way; None otherwise."""
    if not sys.stderr.isatty():
        yield _progress_lines(total) if forced else None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("verifying", total=total)
        yield lambda done: bar.update(task, completed=done)


def _progress_lines(total: int | None) -> Callable[[int], None]:
    step = max((total or 0) // 10, 1)
    shown = 0

    def show(done: int) -> None:
        nonlocal shown
        if done - shown >= step or done == total:
            shown = done
            of = f" of {total:,}" if total else ""
            print(f"verified {done:,}{of} events", file=sys.stderr, flush=True)

    return show


def _failed(finding: Finding, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"ok": False, **_finding_fields(finding)}))
    else:
        print(f"FAILED: {finding.message}")
    return 1


def _finding_fields(finding: Finding) -> dict[str, Any]:
    return {
        "kind": str(finding.kind),
        "message": finding.message,
        "leaf_index": finding.leaf_index,
        "notification_id": finding.notification_id,
        "case_id": str(finding.case_id) if finding.case_id else None,
        "case_version": finding.case_version,
        "fields": list(finding.fields),
    }


def _print_report(
    report: LogReport, elapsed: float, kept: int, notes: Sequence[str], as_json: bool
) -> None:
    rate = report.events / elapsed if elapsed > 0 else 0.0
    if as_json:
        print(
            json.dumps(
                {
                    "ok": True,
                    "events": report.events,
                    "cases": report.cases,
                    "whole_log": report.whole_log,
                    "size": report.size,
                    "root": report.root.hex() if report.root else None,
                    "checkpoints_matched": list(report.checkpoints_matched),
                    "kept_checkpoints": kept,
                    "seconds": round(elapsed, 3),
                    "events_per_second": round(rate),
                    "notes": list(notes),
                }
            )
        )
        return
    for note in notes:
        print(f"note: {note}")
    tree = (
        f"; tree size {report.size:,}, root {report.root.hex()}"
        if report.root is not None and report.size is not None
        else ""
    )
    matched = report.checkpoints_matched
    checkpoints = (
        f"; {_count(len(matched), 'checkpoint')} matched (the latest at size {matched[-1]:,})"
        if matched
        else ""
    )
    print(
        f"ok: {_count(report.events, 'event')} of {_count(report.cases, 'case')} verified in"
        f" {elapsed:.1f}s ({rate:,.0f} events/s){tree}{checkpoints}"
    )


def _count(n: int, thing: str) -> str:
    return f"{n:,} {thing}{'' if n == 1 else 's'}"
