"""Deciding from measurements, pure: statistics, budget verdicts, fidelity, regressions, run
against reference run, diagnosis hints. No I/O beyond what a caller hands in."""
