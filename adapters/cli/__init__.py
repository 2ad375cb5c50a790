"""The `casetrack` command."""
