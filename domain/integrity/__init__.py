"""Tamper evidence for the case log: leaf hashes, per-case chains, an RFC 6962 Merkle tree
and C2SP signed checkpoints.

Pure and self-contained (the standard library and `cryptography` only), so that an auditor can
import it, or copy it, and check a bundle offline without casetrack, its database or its
configuration. Import the submodules: `merkle`, `leaves`, `stored`, `checkpoint`, `bundle`
(the auditor's proof bundle and its offline check).
"""
